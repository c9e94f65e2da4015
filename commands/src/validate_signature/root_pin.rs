//! Which root a run accepts: the one `ROOT_HASH` names, else the root Firefox pins for the
//! server's host (Mozilla's production and stage hosts), else, elsewhere or with `ROOT_HASH=any`,
//! any self-signed root (the report says so).

use reqwest::Url;

use crate::signature::parse_root_hash;

/// The production root, as Mozilla's own Rust client (`PROD_CERT_ROOT_HASH`) and the devtools
/// extension pin it.
pub const PRODUCTION_ROOT: &str =
    "97:E8:BA:9C:F1:2F:B3:DE:53:CC:42:A4:E6:57:7E:D6:4D:F4:93:C2:47:B4:14:FE:A0:36:81:8D:38:23:56:0E";
/// The stage root (the root of `tests/data/conformance/mozilla-test-chain.pem`).
pub const STAGE_ROOT: &str =
    "3C:01:44:6A:BE:90:36:CE:A9:A0:9A:CA:A3:A5:20:AC:62:8F:20:A7:AE:32:CE:86:1C:B2:EF:B7:0F:A0:C7:45";
/// Mozilla's production hosts: the writer, and the CDN that serves `/v1` and `/v2`.
pub const PRODUCTION_HOSTS: &[&str] = &[
    "firefox.settings.services.mozilla.com",
    "remote-settings.mozilla.org",
];
/// Stage hosts end with this.
pub const STAGE_DOMAIN: &str = ".allizom.org";

/// Where the accepted root comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootPin {
    /// `ROOT_HASH` names it.
    Setting([u8; 32]),
    /// The production root, by the server's host.
    Production([u8; 32]),
    /// The stage root, by the server's host.
    Stage([u8; 32]),
    /// `ROOT_HASH=any`: any self-signed root, by choice.
    Any,
    /// Any self-signed root: the server is none of Mozilla's and `ROOT_HASH` is unset.
    Unpinned,
}

impl RootPin {
    /// The pin for `ROOT_HASH`'s value (if set) and the server.
    pub fn choose(setting: Option<&str>, server: &Url) -> Result<RootPin, String> {
        match setting.map(str::trim) {
            Some(value) if value.eq_ignore_ascii_case("any") => Ok(RootPin::Any),
            Some(value) => parse_root_hash(value).map(RootPin::Setting),
            None => Ok(RootPin::for_host(server.host_str().unwrap_or_default())),
        }
    }

    fn for_host(host: &str) -> RootPin {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let hash = |hex: &str| parse_root_hash(hex).expect("a valid built-in root hash");
        if PRODUCTION_HOSTS.contains(&host.as_str()) {
            RootPin::Production(hash(PRODUCTION_ROOT))
        } else if host.ends_with(STAGE_DOMAIN) {
            RootPin::Stage(hash(STAGE_ROOT))
        } else {
            RootPin::Unpinned
        }
    }

    /// The hash a chain's root must have, if any.
    pub fn hash(self) -> Option<[u8; 32]> {
        match self {
            RootPin::Setting(h) | RootPin::Production(h) | RootPin::Stage(h) => Some(h),
            RootPin::Any | RootPin::Unpinned => None,
        }
    }

    /// How the report names it (`root_pin` in JSON).
    pub fn name(self) -> &'static str {
        match self {
            RootPin::Setting(_) => "ROOT_HASH",
            RootPin::Production(_) => "production",
            RootPin::Stage(_) => "stage",
            RootPin::Any => "any",
            RootPin::Unpinned => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::colon_hex;

    fn pin(setting: Option<&str>, server: &str) -> RootPin {
        RootPin::choose(setting, &Url::parse(server).unwrap()).unwrap()
    }

    #[test]
    fn mozillas_hosts_get_the_root_firefox_pins() {
        for server in [
            "https://firefox.settings.services.mozilla.com/v1/",
            "https://firefox.settings.services.mozilla.com/v2/",
            "https://Remote-Settings.mozilla.org./v1/",
        ] {
            let p = pin(None, server);
            assert_eq!(p.name(), "production", "{server}");
            assert_eq!(colon_hex(&p.hash().unwrap()), PRODUCTION_ROOT);
        }
        let p = pin(None, "https://firefox.settings.services.allizom.org/v1/");
        assert_eq!(colon_hex(&p.hash().unwrap()), STAGE_ROOT);
    }

    #[test]
    fn elsewhere_any_root_unless_root_hash_says_otherwise() {
        assert_eq!(pin(None, "http://localhost:8888/v1/"), RootPin::Unpinned);
        assert_eq!(pin(None, "https://evil-mozilla.org/v1/"), RootPin::Unpinned);
        assert_eq!(
            pin(None, "https://firefox.settings.services.mozilla.com.evil/v1/"),
            RootPin::Unpinned
        );
        assert_eq!(
            pin(Some(" ANY "), "https://firefox.settings.services.mozilla.com/v1/"),
            RootPin::Any
        );
        let p = pin(Some(STAGE_ROOT), "https://remote-settings.mozilla.org/v1/");
        assert_eq!(p.name(), "ROOT_HASH");
        assert_eq!(colon_hex(&p.hash().unwrap()), STAGE_ROOT);
        assert!(RootPin::choose(Some("3C:01"), &Url::parse("http://h/").unwrap()).is_err());
    }
}
