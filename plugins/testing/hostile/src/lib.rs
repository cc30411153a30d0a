//! A plugin for the host's sandbox tests. `publish` misbehaves as the post's text says:
//! `loop` spins forever, `announce-loop` fetches `https://api.example.com/started` (so a
//! test knows it runs) and then spins forever, `bomb` allocates without end, `panic` panics, `undeclared` calls a
//! host its manifest does not declare, `redirect` follows a redirect off the allowed
//! hosts, `huge` downloads an oversized response; `count` counts its attempts in a
//! checkpoint (the receipt's id is the count), `checkpoint-too-big` saves an oversized
//! checkpoint, `checkpoint-many` saves twenty; anything else publishes normally.
//! `validate` spins forever on `slow-check`, takes four seconds (by the wall clock) on
//! `slow-ok`, and checks the limits.

use std::hint::black_box;

use herald_plugin_sdk::checkpoint;
use herald_plugin_sdk::http::Request;
use herald_plugin_sdk::{
    Account, Credentials, LengthCounting, Limits, PluginInfo, Post, PublishError, PublishRequest,
    Publisher, Receipt, Violation, register_publisher, time, validate_limits,
};

/// The misbehaving publisher.
pub struct Hostile;

impl Publisher for Hostile {
    fn info() -> PluginInfo {
        PluginInfo {
            platform: "hostile".into(),
            display_name: "Hostile".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: Limits {
                max_text_length: 100,
                counting: LengthCounting::Chars,
                max_media: 0,
                media: vec![],
            },
            idempotent_publish: false,
        }
    }

    fn validate(post: Post) -> Vec<Violation> {
        match post.text.as_str() {
            "slow-check" => spin(),
            "slow-ok" => {
                let until = time::now_unix_millis() + 4_000;
                while time::now_unix_millis() < until {
                    black_box(());
                }
            }
            _ => {}
        }
        validate_limits(&Self::info().limits, &post)
    }

    fn publish(request: PublishRequest) -> Result<Receipt, PublishError> {
        match request.post.text.as_str() {
            "loop" => spin(),
            "announce-loop" => {
                Request::get("https://api.example.com/started").send()?;
                spin()
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1_u8; 1 << 20]));
                    black_box(&hoard);
                }
            }
            "panic" => panic!("the hostile plugin panics on purpose"),
            "undeclared" => fetch("https://evil.example.net/steal"),
            "redirect" => fetch("https://api.example.com/redirect"),
            "huge" => fetch("https://api.example.com/huge"),
            // A POST the platform never answers: the call's deadline cuts it off.
            "stall" => {
                Request::post("https://api.example.com/stall").send()?;
                Err(PublishError::Permanent(
                    "the stalled POST was answered".into(),
                ))
            }
            "count" => {
                let count = match checkpoint::load("count")? {
                    Some(text) => text.parse::<u32>().map_err(|_| {
                        PublishError::Permanent(format!("checkpoint `count` holds {text:?}"))
                    })?,
                    None => 0,
                } + 1;
                checkpoint::save("count", &count.to_string())?;
                Ok(Receipt {
                    platform_post_id: count.to_string(),
                    url: format!("https://api.example.com/p/{count}"),
                })
            }
            "checkpoint-many" => {
                for index in 0..20 {
                    checkpoint::save(&format!("n{index}"), "x")?;
                }
                Err(PublishError::Permanent(
                    "twenty checkpoints were saved".into(),
                ))
            }
            "checkpoint-too-big" => {
                checkpoint::save("big", &"x".repeat(5_000))?;
                Err(PublishError::Permanent(
                    "an oversized checkpoint was saved".into(),
                ))
            }
            _ => Ok(Receipt {
                platform_post_id: "ok".into(),
                url: "https://api.example.com/p/ok".into(),
            }),
        }
    }

    fn verify_credentials(_credentials: Credentials) -> Result<Account, PublishError> {
        Err(PublishError::AuthExpired("never valid".into()))
    }
}

/// Runs until the host's deadline stops it.
fn spin() -> ! {
    let mut counter = 0_u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

fn fetch(url: &str) -> Result<Receipt, PublishError> {
    let response = Request::get(url).send()?;
    Err(PublishError::Permanent(format!(
        "unexpectedly fetched {url}: HTTP {}",
        response.status
    )))
}

register_publisher!(Hostile);
