//! What a post is published to: one target per platform, optionally naming the connected
//! account to publish as and platform options (e.g. Mastodon `visibility`).

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::error::AppError;

/// Most options one target may carry.
pub const MAX_OPTIONS: usize = 20;
/// Longest option key.
pub const MAX_OPTION_KEY_LEN: usize = 64;
/// Longest option value.
pub const MAX_OPTION_VALUE_CHARS: usize = 1_000;

/// One requested target of a post.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSpec {
    /// Platform id.
    pub platform: String,
    /// The connected account to publish as (default: the owner's account on the platform).
    pub connection_id: Option<Uuid>,
    /// Platform options, passed to the platform's plugin.
    pub options: BTreeMap<String, String>,
}

impl TargetSpec {
    /// A target on `platform` with the default account and no options.
    pub fn platform(platform: impl Into<String>) -> Self {
        Self {
            platform: platform.into(),
            ..Self::default()
        }
    }
}

/// Normalises targets (platform ids trimmed and lower-cased, order kept) and refuses an
/// unknown platform, a platform given twice, or malformed options. `field` names the
/// input in errors (`platforms` or `targets`).
pub fn normalize_targets(
    targets: Vec<TargetSpec>,
    known: &[String],
    field: &str,
) -> Result<Vec<TargetSpec>, AppError> {
    let mut out: Vec<TargetSpec> = Vec::with_capacity(targets.len());
    for (index, mut target) in targets.into_iter().enumerate() {
        let raw = target.platform.clone();
        target.platform = raw.trim().to_ascii_lowercase();
        if !known.contains(&target.platform) {
            return Err(AppError::bad_input(
                field,
                format!(
                    "unknown platform `{raw}`; known platforms: {}",
                    known.join(", ")
                ),
            ));
        }
        if let Some(first) = out.iter().position(|t| t.platform == target.platform) {
            // A bare platform list may repeat itself; distinct settings for one platform
            // would be lost, so they are refused.
            if out[first] == target {
                continue;
            }
            return Err(AppError::bad_input(
                format!("{field}[{index}]"),
                format!(
                    "`{}` is targeted twice; a post has one target per platform",
                    target.platform
                ),
            ));
        }
        validate_options(&target.options, &format!("{field}[{index}].options"))?;
        out.push(target);
    }
    Ok(out)
}

fn validate_options(options: &BTreeMap<String, String>, field: &str) -> Result<(), AppError> {
    if options.len() > MAX_OPTIONS {
        return Err(AppError::bad_input(
            field,
            format!(
                "{} options given; at most {MAX_OPTIONS} are accepted",
                options.len()
            ),
        ));
    }
    for (key, value) in options {
        let key_ok = !key.is_empty()
            && key.len() <= MAX_OPTION_KEY_LEN
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !key_ok {
            return Err(AppError::bad_input(
                field,
                format!(
                    "option key `{key}` must be 1–{MAX_OPTION_KEY_LEN} lowercase letters, digits or _"
                ),
            ));
        }
        if value.chars().count() > MAX_OPTION_VALUE_CHARS {
            return Err(AppError::bad_input(
                field,
                format!("option `{key}` is longer than {MAX_OPTION_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// The platform ids of `targets`, in order.
pub fn platforms_of(targets: &[TargetSpec]) -> Vec<String> {
    targets.iter().map(|t| t.platform.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["mastodon".into(), "x".into()]
    }

    #[test]
    fn platforms_are_normalised_and_repeats_merged() {
        let got = normalize_targets(
            vec![
                TargetSpec::platform(" X "),
                TargetSpec::platform("mastodon"),
                TargetSpec::platform("x"),
            ],
            &known(),
            "platforms",
        )
        .expect("known platforms");
        assert_eq!(platforms_of(&got), vec!["x", "mastodon"]);
        assert!(
            normalize_targets(vec![TargetSpec::platform("myspace")], &known(), "platforms")
                .is_err()
        );
    }

    #[test]
    fn conflicting_settings_for_one_platform_are_refused() {
        let mut private = TargetSpec::platform("mastodon");
        private
            .options
            .insert("visibility".into(), "private".into());
        let err = normalize_targets(
            vec![TargetSpec::platform("mastodon"), private],
            &known(),
            "targets",
        )
        .expect_err("twice");
        assert!(matches!(err, AppError::BadUserInput { field, .. } if field == "targets[1]"));
    }

    #[test]
    fn option_keys_and_values_are_bounded() {
        for (key, value) in [
            ("Visibility", "x".to_owned()),
            ("", "x".to_owned()),
            ("spoiler_text", "x".repeat(MAX_OPTION_VALUE_CHARS + 1)),
        ] {
            let mut target = TargetSpec::platform("mastodon");
            target.options.insert(key.into(), value);
            assert!(
                normalize_targets(vec![target], &known(), "targets").is_err(),
                "{key}"
            );
        }
    }
}
