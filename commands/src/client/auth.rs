//! A view's credentials: the `Authorization` header built from an [`Auth`], the origin it is
//! sent to (and nowhere else), and the forms of the credentials to scrub from error texts.

use reqwest::header::HeaderValue;
use reqwest::Url;

use crate::secrets::Auth;

/// Credentials bound to one origin.
pub(crate) struct OriginAuth {
    /// Requests to this origin (scheme, host, port) carry the header; others do not.
    pub origin: Url,
    pub header: HeaderValue,
    /// The credentials' forms (password or token, `user:pass` and its base64), removed from any
    /// text a server sends back into an error: a server or proxy may echo the request.
    pub secrets: Vec<String>,
}

impl OriginAuth {
    pub(crate) fn new(origin: &Url, auth: &Auth) -> Self {
        OriginAuth {
            origin: origin.clone(),
            header: auth_header(auth),
            secrets: auth.forms(),
        }
    }
}

fn auth_header(auth: &Auth) -> HeaderValue {
    use base64::Engine as _;
    let raw = match auth {
        Auth::Basic { user, password } => {
            let pair = format!("{user}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        Auth::Bearer(token) => format!("Bearer {}", token.expose()),
    };
    let mut value =
        HeaderValue::from_str(&raw).unwrap_or_else(|_| HeaderValue::from_static("Invalid"));
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn auth_header_is_sensitive() {
        let h = auth_header(&Auth::Basic {
            user: "u".into(),
            password: Secret::new("hunter2"),
        });
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Basic dTpodW50ZXIy");
    }
}
