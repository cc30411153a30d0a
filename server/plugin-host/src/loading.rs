//! Loading one plugin: linking the host functions of every supported WIT version, routing
//! the component to the version it exports, and checking its manifest against `info()`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32};

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::bindings::{Call, Outcome, v0_1_0, v0_2_0};
use crate::plugin::{Plugin, Pre};
use crate::state::HostState;
use crate::{
    Inner, Lane, LengthCounting, Limits, Manifest, PluginError, PluginInfo, SUPPORTED_WIT_VERSIONS,
    engine,
};

/// The linkers of every supported WIT version.
pub(crate) struct Linkers {
    v0_1: Linker<HostState>,
    v0_2: Linker<HostState>,
}

pub(crate) fn linkers(engine: &Engine) -> Result<Linkers, PluginError> {
    let build = |add: fn(&mut Linker<HostState>) -> wasmtime::Result<()>| {
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| add(&mut linker))
            .map_err(|error| PluginError::Engine(format!("linking host functions: {error:#}")))?;
        Ok::<_, PluginError>(linker)
    };
    Ok(Linkers {
        v0_1: build(v0_1_0::add_to_linker)?,
        v0_2: build(v0_2_0::add_to_linker)?,
    })
}

impl Inner {
    pub(crate) async fn load_plugin(
        &self,
        linkers: &Linkers,
        path: &Path,
    ) -> Result<Plugin, PluginError> {
        let invalid = |reason: String| PluginError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let manifest = Manifest::for_plugin(path)?;
        let bytes = std::fs::read(path).map_err(|source| PluginError::Io {
            path: path.to_owned(),
            source,
        })?;
        let component =
            engine::component(&self.engine, self.config.cache_dir.as_deref(), path, &bytes)?;
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let pre = if exports.iter().any(|name| name == v0_1_0::EXPORT) {
            let instance_pre = linkers.v0_1.instantiate_pre(&component).map_err(|e| {
                invalid(format!("imports something the host does not grant: {e:#}"))
            })?;
            Pre::V0_1(v0_1_0::PluginPre::new(instance_pre).map_err(|e| invalid(format!("{e:#}")))?)
        } else if exports.iter().any(|name| name == v0_2_0::EXPORT) {
            let instance_pre = linkers.v0_2.instantiate_pre(&component).map_err(|e| {
                invalid(format!("imports something the host does not grant: {e:#}"))
            })?;
            Pre::V0_2(v0_2_0::PluginPre::new(instance_pre).map_err(|e| invalid(format!("{e:#}")))?)
        } else {
            return Err(invalid(format!(
                "exports none of {} (it exports {exports:?}); supported WIT versions: {SUPPORTED_WIT_VERSIONS:?}",
                [v0_1_0::EXPORT, v0_2_0::EXPORT].join(", ")
            )));
        };
        let mut plugin = Plugin {
            info: PluginInfo {
                platform: manifest.id.clone(),
                display_name: manifest.id.clone(),
                version: manifest.version.clone(),
                wit_version: String::new(),
                limits: Limits {
                    max_text_length: 0,
                    counting: LengthCounting::Chars,
                    max_media: 0,
                    media: Vec::new(),
                },
                idempotent_publish: false,
            },
            path: path.to_owned(),
            id: Arc::from(manifest.id.as_str()),
            allowed_hosts: manifest.allowed_hosts.clone().into(),
            account_host_keys: manifest.account_hosts.clone(),
            media_by_url: manifest.media_by_url,
            pre,
            consecutive_traps: AtomicU32::new(0),
            quarantined: AtomicBool::new(false),
        };
        let info = match self
            .call(
                Lane::Api,
                &plugin,
                Call::Info,
                Arc::clone(&plugin.allowed_hosts),
                |state| state,
            )
            .await
            .map_err(|e| invalid(format!("info() failed: {e}")))?
        {
            (Outcome::Info(info), _) => info,
            (other, _) => return Err(invalid(format!("info() returned {other:?}"))),
        };
        if info.platform != manifest.id {
            return Err(invalid(format!(
                "info().platform is {:?} but the manifest's id is {:?}",
                info.platform, manifest.id
            )));
        }
        if info.version != manifest.version {
            return Err(invalid(format!(
                "info().version is {:?} but the manifest's version is {:?}",
                info.version, manifest.version
            )));
        }
        plugin.info = info;
        Ok(plugin)
    }
}
