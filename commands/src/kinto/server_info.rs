//! `GET /v1/`: the server info the commands read (settings, capabilities, user), the signer
//! capability it holds, and what a command that needs a writer server says on a server
//! without it.

use serde::Deserialize;
use serde_json::Value;

use super::{Kinto, SignerCapability};
use crate::client::ClientError;

/// `GET /v1/`: the parts of the server info the commands use. Kinto always sends `capabilities`
/// and `settings`: an answer without them is not a server info (a proxy's page, another
/// service), so it is rejected and retried, never read as "a server without the signer".
#[derive(Debug, Clone, Deserialize)]
pub struct ServerInfo {
    pub capabilities: serde_json::Map<String, Value>,
    pub settings: serde_json::Map<String, Value>,
    #[serde(default)]
    pub user: Option<Value>,
}

impl ServerInfo {
    pub async fn fetch(client: &Kinto) -> Result<ServerInfo, ClientError> {
        let (info, _) = client.get_json("/", &[]).await?;
        Ok(info)
    }

    pub fn batch_max_requests(&self) -> usize {
        self.settings
            .get("batch_max_requests")
            .and_then(Value::as_u64)
            .map(|n| n.clamp(1, 10_000) as usize)
            .unwrap_or(25)
    }
}

impl ServerInfo {
    /// The signer capability, when the server has the signer plugin (writer servers).
    pub fn signer(&self) -> Result<Option<SignerCapability>, String> {
        match self.capabilities.get("signer") {
            None => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| format!("capabilities.signer is not as expected: {e}")),
        }
    }
}

/// What the original says when a command that drives the signer runs on a server without it.
pub const NO_SIGNER_MESSAGE: &str = "No signer capabilities found. Run on *writer* server!";

impl ServerInfo {
    /// The signer capability, for commands that only make sense on a writer server: a server
    /// without it is a usage error (exit 2) with the original's message.
    pub fn require_signer(&self) -> Result<SignerCapability, crate::CommandError> {
        self.signer()
            .map_err(crate::CommandError::Runtime)?
            .ok_or_else(|| crate::CommandError::Usage(NO_SIGNER_MESSAGE.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_server_info_needs_capabilities_and_settings() {
        let info: ServerInfo = serde_json::from_value(json!({
            "project_name": "kinto", "url": "http://h/v1/",
            "settings": {"batch_max_requests": 25}, "capabilities": {}
        }))
        .unwrap();
        assert!(info.signer().unwrap().is_none());
        assert_eq!(info.batch_max_requests(), 25);
        // Another JSON document is not "a server without the signer".
        for other in [json!({"data": 42}), json!({"capabilities": {}}), json!({})] {
            assert!(
                serde_json::from_value::<ServerInfo>(other.clone()).is_err(),
                "{other}"
            );
        }
    }
}
