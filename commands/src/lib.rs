pub mod signature;
pub fn placeholder() {}
