//! The JSON API's batch format (`multipart/mixed`, one HTTP request per part): the body of a
//! batch of PATCHes, and the status of each call in the answer, matched by `Content-ID`.

use crate::client::Response;

/// A batch request body and its boundary.
pub struct Body {
    pub boundary: String,
    pub bytes: Vec<u8>,
}

impl Body {
    pub fn content_type(&self) -> String {
        format!("multipart/mixed; boundary={}", self.boundary)
    }
}

/// One PATCH of `json` per object path, numbered from 1 in `Content-ID`.
pub fn patch_body(paths: impl Iterator<Item = String>, json: &str) -> Body {
    let boundary = format!("batch_{:016x}", fastrand::u64(..));
    let mut text = String::new();
    for (i, path) in paths.enumerate() {
        text.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\
             Content-ID: <item+{}>\r\n\r\nPATCH {path} HTTP/1.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{json}\r\n",
            i + 1,
            json.len()
        ));
    }
    text.push_str(&format!("--{boundary}--\r\n"));
    Body {
        boundary,
        bytes: text.into_bytes(),
    }
}

/// The HTTP status of each of the `calls` calls of a batch answer, in call order; a call the
/// answer does not account for is an error naming why.
pub fn statuses(response: &Response, calls: usize) -> Vec<Result<u16, String>> {
    let mut found: Vec<Option<u16>> = vec![None; calls];
    let boundary = response
        .header("content-type")
        .and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_string());
    let Some(boundary) = boundary else {
        return vec![Err("the batch answer is not multipart".into()); calls];
    };
    let text = String::from_utf8_lossy(&response.body);
    let delimiter = format!("--{boundary}");
    for (position, part) in text.split(delimiter.as_str()).skip(1).enumerate() {
        if part.starts_with("--") {
            break;
        }
        let index = content_id_index(part).unwrap_or(position + 1);
        let status = part
            .lines()
            .find_map(|line| line.strip_prefix("HTTP/1.1 "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|code| code.parse().ok());
        if let (Some(slot), Some(status)) =
            (index.checked_sub(1).and_then(|i| found.get_mut(i)), status)
        {
            *slot = Some(status);
        }
    }
    found
        .into_iter()
        .map(|status| status.ok_or_else(|| "the batch answer has no status for it".to_string()))
        .collect()
}

/// `N` of a part's `Content-ID: <response-…+N>`.
fn content_id_index(part: &str) -> Option<usize> {
    let line = part
        .lines()
        .take_while(|line| !line.starts_with("HTTP/"))
        .find(|line| line.to_ascii_lowercase().starts_with("content-id:"))?;
    let id = line.split_once(':')?.1.trim().trim_matches(['<', '>']);
    id.rsplit_once('+')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn answer(boundary: &str, body: &str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_str(&format!("multipart/mixed; boundary={boundary}")).unwrap(),
        );
        Response {
            url: "http://x/batch/storage/v1".parse().unwrap(),
            status: reqwest::StatusCode::OK,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_batch_numbers_its_calls() {
        let body = patch_body(
            [
                "/storage/v1/b/b/o/a".to_string(),
                "/storage/v1/b/b/o/c".to_string(),
            ]
            .into_iter(),
            r#"{"customTime":"2026-01-01T00:00:00Z"}"#,
        );
        let text = String::from_utf8(body.bytes).unwrap();
        assert!(text.contains("Content-ID: <item+1>\r\n\r\nPATCH /storage/v1/b/b/o/a HTTP/1.1"));
        assert!(text.contains("Content-ID: <item+2>\r\n\r\nPATCH /storage/v1/b/b/o/c HTTP/1.1"));
        assert!(text.ends_with(&format!("--{}--\r\n", body.boundary)));
    }

    #[test]
    fn statuses_follow_content_ids_not_the_order_of_parts() {
        let body = "--xyz\r\nContent-Type: application/http\r\nContent-ID: <response-item+2>\r\n\r\n\
                    HTTP/1.1 404 Not Found\r\n\r\n{}\r\n--xyz\r\nContent-ID: <response-item+1>\r\n\r\n\
                    HTTP/1.1 200 OK\r\n\r\n{}\r\n--xyz--\r\n";
        let statuses = statuses(&answer("xyz", body), 3);
        assert_eq!(statuses[0], Ok(200));
        assert_eq!(statuses[1], Ok(404));
        assert!(
            statuses[2].is_err(),
            "a call missing from the answer is an error"
        );
    }
}
