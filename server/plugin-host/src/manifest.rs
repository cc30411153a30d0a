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
    /// Whether the platform downloads a post's media itself from the URLs Herald gives it
    /// (Instagram, Threads, Facebook), rather than the plugin uploading the bytes: those
    /// URLs must then be reachable from the internet (`HERALD_PUBLIC_URL`).
    #[serde(default)]
    pub media_by_url: bool,
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
        if !is_semver(&manifest.version) {
            return Err(format!(
                "version {:?} is not semver (x.y.z, optionally -pre.release and +build)",
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

/// Whether `version` is `major.minor.patch` (decimal numbers), optionally followed by
/// `-` and dot-separated pre-release identifiers and `+` and dot-separated build
/// identifiers (each non-empty, of ASCII letters, digits and `-`), as semver has it.
fn is_semver(version: &str) -> bool {
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let identifiers = |part: &str| {
        part.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    numbers.len() == 3
        && numbers.iter().all(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u64>().is_ok()
        })
        && pre.is_none_or(identifiers)
        && build.is_none_or(identifiers)
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
        for version in [
            "1.2",
            "1.2.3.4",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "+1.2.3",
            "1.2.x",
        ] {
            let text = format!("id = \"x\"\nversion = \"{version}\"");
            assert!(Manifest::parse(&text).is_err(), "{version} accepted");
        }
        // Semver's pre-release and build parts, dots included.
        for version in [
            "1.0.0-rc.1",
            "1.0.0+build.5",
            "1.0.0-alpha-1.x+exp.sha.5114f85",
        ] {
            let text = format!("id = \"x\"\nversion = \"{version}\"");
            assert!(Manifest::parse(&text).is_ok(), "{version} refused");
        }
        assert!(Manifest::parse("id = \"x\"\nversion = \"1.0.0\"\nextra = 1").is_err());
    }
}

/// Properties of the parser over arbitrary text and every manifest it should accept.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// TOML text of a manifest with these fields.
    fn toml_text(id: &str, version: &str, allowed: &[String], account: &[String]) -> String {
        let mut table = toml::Table::new();
        table.insert("id".into(), id.into());
        table.insert("version".into(), version.into());
        table.insert("allowed_hosts".into(), allowed.to_vec().into());
        table.insert("account_hosts".into(), account.to_vec().into());
        toml::to_string(&table).expect("a table serialises")
    }

    fn host() -> impl Strategy<Value = (String, Option<u16>)> {
        (
            "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?){0,3}\\.[a-zA-Z]{2,6}",
            proptest::option::of(1u16..),
        )
    }

    fn version() -> impl Strategy<Value = String> {
        (
            any::<(u32, u32, u32)>(),
            proptest::option::of("[0-9A-Za-z-]{1,8}(\\.[0-9A-Za-z-]{1,8}){0,3}"),
            proptest::option::of("[0-9A-Za-z-]{1,8}(\\.[0-9A-Za-z-]{1,8}){0,3}"),
        )
            .prop_map(|((major, minor, patch), pre, build)| {
                let mut version = format!("{major}.{minor}.{patch}");
                if let Some(pre) = pre {
                    version = format!("{version}-{pre}");
                }
                if let Some(build) = build {
                    version = format!("{version}+{build}");
                }
                version
            })
    }

    /// Text near a manifest's shape: the known keys and one unknown, values of any type.
    fn manifest_like() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            any::<String>().prop_map(|s| toml::Value::from(s).to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            proptest::collection::vec(any::<String>(), 0..4)
                .prop_map(|v| toml::Value::from(v).to_string()),
            Just("{ a = 1 }".to_owned()),
            Just("[".to_owned()),
        ];
        let key = prop_oneof![
            Just("id"),
            Just("version"),
            Just("allowed_hosts"),
            Just("account_hosts"),
            Just("extra"),
        ];
        proptest::collection::vec((key, value), 0..6).prop_map(|lines| {
            lines
                .into_iter()
                .map(|(key, value)| format!("{key} = {value}\n"))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any text: a manifest or a reason, never a panic; what is accepted is valid.
        #[test]
        fn arbitrary_text_never_panics(text in prop_oneof![any::<String>(), manifest_like()]) {
            if let Ok(manifest) = Manifest::parse(&text) {
                prop_assert!(!manifest.id.is_empty());
                prop_assert!(is_semver(&manifest.version));
                for host in &manifest.allowed_hosts {
                    prop_assert_eq!(normalize_host(host), Ok(host.clone()));
                }
            }
        }

        /// A valid manifest parses to its fields, hosts lowercased with their port, and
        /// written back out parses to the same manifest.
        #[test]
        fn valid_manifests_round_trip(
            id in "[a-z0-9_-]{1,24}",
            version in version(),
            hosts in proptest::collection::vec(host(), 0..5),
            account in proptest::collection::vec("[a-z_]{1,12}", 0..3),
        ) {
            let allowed: Vec<String> = hosts
                .iter()
                .map(|(host, port)| match port {
                    Some(port) => format!("{host}:{port}"),
                    None => host.clone(),
                })
                .collect();
            let manifest = Manifest::parse(&toml_text(&id, &version, &allowed, &account))
                .expect("a valid manifest");
            let expected: Vec<String> = hosts
                .iter()
                .map(|(host, port)| format!("{}:{}", host.to_ascii_lowercase(), port.unwrap_or(443)))
                .collect();
            prop_assert_eq!(&manifest.id, &id);
            prop_assert_eq!(&manifest.version, &version);
            prop_assert_eq!(&manifest.allowed_hosts, &expected);
            prop_assert_eq!(&manifest.account_hosts, &account);
            let again = Manifest::parse(&toml_text(
                &manifest.id,
                &manifest.version,
                &manifest.allowed_hosts,
                &manifest.account_hosts,
            ))
            .expect("written back");
            prop_assert_eq!(again, manifest);
        }
    }
}
