//! Firefox's `mozlz4` files (what `IOUtils.readUTF8(path, {decompress: true})` reads): the magic
//! `mozLz40\0`, the uncompressed length as a 4-byte little-endian integer, then one LZ4 block.

/// The 8-byte magic.
pub const MAGIC: &[u8; 8] = b"mozLz40\0";

/// `data` as a mozlz4 file; `None` when it is too large for the 4-byte length (4 GiB).
pub fn encode(data: &[u8]) -> Option<Vec<u8>> {
    let length = u32::try_from(data.len()).ok()?;
    let block = lz4_flex::block::compress(data);
    let mut file = Vec::with_capacity(MAGIC.len() + 4 + block.len());
    file.extend_from_slice(MAGIC);
    file.extend_from_slice(&length.to_le_bytes());
    file.extend_from_slice(&block);
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_the_magic_the_length_and_one_block() {
        let data = br#"[{"metadata":{},"timestamp":1,"changes":[]}]"#.repeat(50);
        let file = encode(&data).unwrap();
        assert_eq!(&file[..8], b"mozLz40\0");
        assert_eq!(u32::from_le_bytes(file[8..12].try_into().unwrap()) as usize, data.len());
        assert!(file.len() < data.len() / 4, "compressed: {} bytes", file.len());
        let block = lz4_flex::block::decompress(&file[12..], data.len()).unwrap();
        assert_eq!(block, data);
        assert_eq!(&encode(b"").unwrap()[8..12], &[0, 0, 0, 0]);
    }
}
