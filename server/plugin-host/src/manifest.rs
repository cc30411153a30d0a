//! The manifest next to each plugin (`<name>.toml` beside `<name>.wasm`): its id, version
//! and the hosts it may call.

use std::path::Path;

use serde::Deserialize;

use crate::PluginError;

/// A plugin's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Platform id; must equal what the plugin's `info` reports.
    pub id: String,
    /// Plugin version (semver); must equal what `info` reports.
    pub version: String,
    /// Hosts the plugin may call over https: `host` (port 443) or `host:port`.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Credential `extra` keys whose value is the `https://` base URL of the account's own
    /// server (a Mastodon instance, a Matrix homeserver, a Bluesky PDS). A call made with
    /// such credentials may also reach that host.
    #[serde(default)]
    pub account_hosts: Vec<String>,
}

impl Manifest {
    /// Reads and checks the manifest of the plugin at `wasm` (same path, `.toml`).
    pub fn for_plugin(wasm: &Path) -> Result<Self, PluginError> {
        let path = wasm.with_extension("toml");
        let text = std::fs::read_to_string(&path).map_err(|error| PluginError::Manifest {
            path: path.clone(),
            reason: format!("cannot read it: {error}"),
        })?;
        Self::parse(&text).map_err(|reason| PluginError::Manifest { path, reason })
    }

    /// Parses and checks a manifest.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut manifest: Manifest = toml::from_str(text).map_err(|error| error.to_string())?;
        if manifest.id.is_empty()
            || !manifest
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(format!(
                "id {:?} must be non-empty lowercase letters, digits, - or _",
                manifest.id
            ));
        }
        if manifest.version.split('.').count() != 3
            || manifest
                .version
                .split(['.', '-', '+'])
                .take(3)
                .any(|part| part.parse::<u64>().is_err())
        {
            return Err(format!(
                "version {:?} is not semver (x.y.z)",
                manifest.version
            ));
        }
        for host in &mut manifest.allowed_hosts {
            *host = normalize_host(host)?;
        }
        if let Some(key) = manifest.account_hosts.iter().find(|key| key.is_empty()) {
            return Err(format!(
                "account_hosts entry {key:?} must name a credential key"
            ));
        }
        Ok(manifest)
    }
}

/// `host` or `host:port`, lowercased, with the default port made explicit.
fn normalize_host(entry: &str) -> Result<String, String> {
    let invalid = || {
        format!(
            "allowed_hosts entry {entry:?} must be a host name or host:port, without scheme or path"
        )
    };
    if entry.contains("://") || entry.contains(['/', '@', '?', '#', '*']) || entry.is_empty() {
        return Err(invalid());
    }
    let url = url::Url::parse(&format!("https://{entry}/")).map_err(|_| invalid())?;
    let host = url.host_str().ok_or_else(invalid)?;
    Ok(format!(
        "{host}:{}",
        url.port_or_known_default().unwrap_or(443)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises_hosts() {
        let manifest = Manifest::parse(
            "id = \"example\"\nversion = \"0.1.0\"\nallowed_hosts = [\"API.example.com\", \"up.example.com:8443\"]",
        );
        assert_eq!(
            manifest.map(|m| m.allowed_hosts),
            Ok(vec![
                "api.example.com:443".to_owned(),
                "up.example.com:8443".to_owned()
            ])
        );
    }

    #[test]
    fn refuses_schemes_paths_wildcards_and_bad_ids() {
        for hosts in ["https://a.com", "a.com/x", "*.a.com", "u@a.com", ""] {
            let text = format!("id = \"x\"\nversion = \"1.0.0\"\nallowed_hosts = [\"{hosts}\"]");
            assert!(Manifest::parse(&text).is_err(), "{hosts} accepted");
        }
        assert!(Manifest::parse("id = \"Bad Id\"\nversion = \"1.0.0\"").is_err());
        assert!(Manifest::parse("id = \"x\"\nversion = \"1\"").is_err());
        assert!(Manifest::parse("id = \"x\"\nversion = \"1.0.0\"\nextra = 1").is_err());
    }
}
