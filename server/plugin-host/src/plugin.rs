//! A loaded plugin: its description, the hosts it may reach, its linked component and its
//! trap count.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32};

use crate::bindings::{v0_1_0, v0_2_0};
use crate::state::HostState;
use crate::{Credentials, PluginError, PluginInfo, net};

/// A plugin the host serves.
pub(crate) struct Plugin {
    pub(crate) info: PluginInfo,
    pub(crate) path: PathBuf,
    pub(crate) id: Arc<str>,
    pub(crate) allowed_hosts: Arc<[String]>,
    pub(crate) account_host_keys: Vec<String>,
    pub(crate) media_by_url: bool,
    pub(crate) pre: Pre,
    pub(crate) consecutive_traps: AtomicU32,
    pub(crate) quarantined: AtomicBool,
}

impl Plugin {
    /// The hosts a call with `credentials` may reach: the manifest's `allowed_hosts` plus
    /// the account servers named by its `account_hosts` keys.
    pub(crate) fn hosts_for(
        &self,
        credentials: Option<&Credentials>,
    ) -> Result<Arc<[String]>, PluginError> {
        let Some(credentials) = credentials.filter(|_| !self.account_host_keys.is_empty()) else {
            return Ok(Arc::clone(&self.allowed_hosts));
        };
        let mut hosts = self.allowed_hosts.to_vec();
        for key in &self.account_host_keys {
            // As the SDK's `Credentials::extra_value` reads it: the first value of the key,
            // absent when blank.
            let Some((_, value)) = credentials
                .extra
                .iter()
                .find(|(name, _)| name == key)
                .filter(|(_, value)| !value.trim().is_empty())
            else {
                continue;
            };
            let authority =
                net::account_authority(value).map_err(|reason| PluginError::AccountHost {
                    platform: self.id.to_string(),
                    key: key.clone(),
                    reason,
                })?;
            hosts.push(authority);
        }
        Ok(hosts.into())
    }
}

/// The component linked once, for the WIT version it exports.
pub(crate) enum Pre {
    V0_1(v0_1_0::PluginPre<HostState>),
    V0_2(v0_2_0::PluginPre<HostState>),
}
