//! A fuzz-style test of everything that walks a client's document before the executor
//! does: the parse-and-expansion guard ([`super::documents`]), the compiled-reads planner
//! ([`super::compiled::compile`]), the introspection check, the mutation cost of the rate
//! limits and the subscription sharing check. Documents are random tokens, random bytes,
//! mutations of valid documents, deep nesting, fragment cycles and long fragment chains,
//! fragments spread many times over and huge numbers of aliases.
//!
//! It runs on a thread with a Tokio worker's stack (2 MiB), so a walk that recurses once
//! per fragment or per nesting level overflows here as it would in the server. Each
//! document's time is measured and the slowest are printed (not asserted: the machine's
//! load is not the code's). `HERALD_FUZZ_SEED` and `HERALD_FUZZ_DOCUMENTS` replay or widen
//! a run.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::compiled;
use super::documents::DocumentCache;
use super::{fanout, introspection, limits};

/// The seed used when `HERALD_FUZZ_SEED` is not set.
const DEFAULT_SEED: u64 = 0x4845_5241_4c44;
/// Documents per run when `HERALD_FUZZ_DOCUMENTS` is not set.
const DEFAULT_DOCUMENTS: usize = 1_000;
/// A Tokio worker thread's default stack.
const WORKER_STACK_BYTES: usize = 2 * 1024 * 1024;
/// The largest document the HTTP endpoint accepts by default (`HERALD_GRAPHQL_MAX_BODY_KB`).
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Valid documents that mutations start from.
const SEEDS: [&str; 8] = [
    "{ posts(first: 10) { edges { cursor node { id content status targets { id platform status } } } pageInfo { hasNextPage endCursor } } }",
    "query Page($after: String) { posts(first: 5, after: $after) { edges { node { ...P } } } } fragment P on Post { id content createdAt }",
    "mutation { createPost(input: {content: \"hi\", platforms: [\"x\"]}) { id status } }",
    "subscription($id: ID) { postUpdated(id: $id) { id status } }",
    "{ me { userId } __typename }",
    "{ __schema { queryType { name } types { name fields { name } } } }",
    "query { posts { edges { node { ... on Post { id labels } } } } }",
    "mutation M { a: retryPost(id: \"1\") { id } b: connectAccount(platform: \"x\", credentials: {}) { id } }",
];

/// Tokens random documents are made of.
const TOKENS: [&str; 40] = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "...",
    "@",
    "$",
    "!",
    "=",
    ",",
    "|",
    "&",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "posts",
    "edges",
    "node",
    "id",
    "cursor",
    "first",
    "after",
    "Post",
    "Query",
    "Mutation",
    "__typename",
    "__schema",
    "createPost",
    "\"text\"",
    "\"\"\"block\"\"\"",
    "42",
    "-1.5e3",
    "true",
    "null",
    "#comment\n",
];

/// One generated document and the kind of generator that made it.
struct Case {
    kind: &'static str,
    text: String,
}

/// A size from 1 to `max`, log-uniform: mostly small documents, some of the largest.
fn size(rng: &mut StdRng, max: usize) -> usize {
    let exponent = rng.random_range(0.0..(max as f64).ln());
    (exponent.exp() as usize).clamp(1, max)
}

fn random_tokens(rng: &mut StdRng) -> String {
    let count = rng.random_range(1..400);
    let mut text = String::new();
    for _ in 0..count {
        text.push_str(TOKENS.choose(rng).copied().unwrap_or("{"));
        text.push(' ');
    }
    text
}

fn random_bytes(rng: &mut StdRng) -> String {
    let length = rng.random_range(0..2_000);
    let bytes: Vec<u8> = (0..length).map(|_| rng.random()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A valid document with characters and tokens deleted, repeated, swapped or inserted.
fn mutated(rng: &mut StdRng) -> String {
    let mut text: Vec<char> = SEEDS.choose(rng).copied().unwrap_or("{}").chars().collect();
    for _ in 0..rng.random_range(1..12) {
        if text.is_empty() {
            break;
        }
        let at = rng.random_range(0..text.len());
        match rng.random_range(0..5) {
            0 => {
                text.remove(at);
            }
            1 => {
                let end = (at + rng.random_range(1..20)).min(text.len());
                let copy: Vec<char> = text[at..end].to_vec();
                for _ in 0..rng.random_range(1..50) {
                    text.splice(at..at, copy.iter().copied());
                }
            }
            2 => {
                let other = rng.random_range(0..text.len());
                text.swap(at, other);
            }
            3 => {
                let token = TOKENS.choose(rng).copied().unwrap_or("{");
                text.splice(at..at, token.chars());
            }
            _ => text.insert(at, char::from(rng.random_range(0x20u8..0x7f))),
        }
    }
    text.into_iter().collect()
}

fn deep_nesting(rng: &mut StdRng) -> String {
    let depth = size(rng, 20_000);
    let field = ["posts", "a", "edges", "node"]
        .choose(rng)
        .copied()
        .unwrap_or("a");
    let mut text = String::with_capacity(depth * (field.len() + 4));
    if rng.random_bool(0.5) {
        for _ in 0..depth {
            text.push_str(field);
            text.push_str(" { ");
        }
        text.push_str("id");
        text.push_str(&" }".repeat(depth));
        format!("{{ {text} }}")
    } else {
        // Inline fragments and lists nest too.
        let open = ["... on Query { ", "a(x: [", "a(x: {y: "]
            .choose(rng)
            .copied()
            .unwrap_or("{");
        let close = match open {
            "... on Query { " => " }",
            "a(x: [" => "])",
            _ => "})",
        };
        format!("{{ {}1{} }}", open.repeat(depth), close.repeat(depth))
    }
}

/// `F0` spreads `F1`, which spreads `F2`, …: a chain of `length` fragments, closed into a
/// cycle when `cycle`; the root spreads `F0` inside `posts`' nodes (the planner's path) or
/// at the root of a query or mutation.
fn fragment_chain(rng: &mut StdRng, length: usize, cycle: bool) -> String {
    let (root, on) = match rng.random_range(0..3) {
        0 => ("{ posts { edges { node { ...F0 } } } }", "Post"),
        1 => ("{ ...F0 }", "Query"),
        _ => ("mutation { ...F0 }", "Mutation"),
    };
    let field = match on {
        "Post" => "id",
        "Query" => "__typename",
        _ => "createPost(input: {content: \"x\"}) { id }",
    };
    let mut text = String::with_capacity(length * 40);
    text.push_str(root);
    text.push('\n');
    for n in 0..length {
        let next = if n + 1 < length {
            format!("...F{}", n + 1)
        } else if cycle {
            "...F0".to_owned()
        } else {
            field.to_owned()
        };
        text.push_str(&format!("fragment F{n} on {on} {{ {next} }}\n"));
    }
    text
}

fn many_aliases(rng: &mut StdRng) -> String {
    let count = size(rng, 60_000);
    let field = [
        "__typename",
        "posts { edges { cursor } }",
        "me { userId }",
        "createPost(input: {content: \"x\"}) { id }",
    ]
    .choose(rng)
    .copied()
    .unwrap_or("__typename");
    let mut text = String::from(if field.starts_with("createPost") {
        "mutation { "
    } else {
        "{ "
    });
    for n in 0..count {
        text.push_str(&format!("a{n}: {field} "));
    }
    text.push('}');
    text
}

fn generate(rng: &mut StdRng) -> Case {
    let (kind, text) = match rng.random_range(0..9) {
        0 => ("tokens", random_tokens(rng)),
        1 => ("bytes", random_bytes(rng)),
        2 | 3 => ("mutated", mutated(rng)),
        4 => ("nesting", deep_nesting(rng)),
        5 => {
            let length = size(rng, 25_000);
            ("chain", fragment_chain(rng, length, false))
        }
        6 => {
            let length = size(rng, 5_000);
            ("cycle", fragment_chain(rng, length, true))
        }
        7 => {
            let levels = rng.random_range(1..60);
            (
                "explosion",
                super::test_documents::fragments_four_times_over(
                    "{ posts { edges { node { ...F0 } } } }",
                    "Post",
                    "id",
                    levels,
                )
                .replacen("...F0 } } } }", &format!("...F{levels} }} }} }} }}"), 1),
            )
        }
        _ => ("aliases", many_aliases(rng)),
    };
    let mut text = text;
    if text.len() > MAX_DOCUMENT_BYTES {
        let mut end = MAX_DOCUMENT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    Case { kind, text }
}

/// Runs every walker over `text`, as a request would (each must return, whatever it says).
fn walk(cache: &DocumentCache, text: &str) -> bool {
    let mut request = async_graphql::Request::new(text);
    let Ok(document) = cache.parse(&mut request) else {
        return false;
    };
    let operations: Vec<Option<String>> = std::iter::once(None)
        .chain(
            document
                .operations
                .iter()
                .filter_map(|(name, _)| name.map(|n| Some(n.to_string())))
                .take(4),
        )
        .collect();
    introspection::requested(document);
    for name in &operations {
        compiled::compile(document, name.as_deref());
        limits::expensive_mutations(document, name.as_deref());
        fanout::shareable(document, name.as_deref());
    }
    true
}

/// Runs `documents` generated documents from `seed` on a worker-sized stack; the number
/// parsed and each kind's slowest time.
fn run(seed: u64, documents: usize) -> (usize, Vec<(&'static str, Duration, usize)>, Duration) {
    std::thread::Builder::new()
        .name("fuzz".into())
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed);
            let cache = DocumentCache::new(100);
            let mut parsed = 0;
            let mut slowest: Vec<(&'static str, Duration, usize)> = Vec::new();
            let started = Instant::now();
            for _ in 0..documents {
                let case = generate(&mut rng);
                let start = Instant::now();
                parsed += usize::from(walk(&cache, &case.text));
                let took = start.elapsed();
                match slowest.iter_mut().find(|(kind, _, _)| *kind == case.kind) {
                    Some(entry) if entry.1 < took => *entry = (case.kind, took, case.text.len()),
                    Some(_) => {}
                    None => slowest.push((case.kind, took, case.text.len())),
                }
            }
            (parsed, slowest, started.elapsed())
        })
        .expect("spawn the fuzz thread")
        .join()
        .expect("the fuzz thread must not panic")
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_documents_never_panic_or_overflow_the_stack() {
    let seed = setting("HERALD_FUZZ_SEED", DEFAULT_SEED);
    let documents = usize::try_from(setting("HERALD_FUZZ_DOCUMENTS", DEFAULT_DOCUMENTS as u64))
        .unwrap_or(DEFAULT_DOCUMENTS);
    println!("fuzz: seed {seed} (HERALD_FUZZ_SEED={seed} replays it), {documents} documents");
    let (parsed, mut slowest, total) = run(seed, documents);
    slowest.sort_by_key(|(_, took, _)| std::cmp::Reverse(*took));
    println!(
        "fuzz: {documents} documents ({parsed} parsed) in {:.2} s: {:.0} documents/s",
        total.as_secs_f64(),
        documents as f64 / total.as_secs_f64()
    );
    for (kind, took, bytes) in &slowest {
        println!(
            "fuzz: slowest {kind:<9} {:>9.3} ms ({bytes} bytes)",
            took.as_secs_f64() * 1e3
        );
    }
    assert!(
        parsed > 0,
        "no generated document parsed: the generators are broken"
    );
}

/// Runs `work` on a thread with a Tokio worker's stack; a stack overflow aborts the test.
fn on_worker_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK_BYTES)
        .spawn(work)
        .expect("spawn")
        .join()
        .expect("no panic")
}

/// The regression the fuzz found: the guard and the introspection check followed a chain
/// of fragments by recursion, one stack frame per fragment, and a 1 MiB document of
/// 25 000 fragments overflowed a worker's stack (aborting the server).
#[test]
fn a_chain_of_fragments_as_long_as_a_body_allows_is_walked() {
    for on_posts in [true, false] {
        let text = on_worker_stack(move || {
            let mut rng = StdRng::seed_from_u64(u64::from(on_posts));
            let mut text = fragment_chain(&mut rng, 25_000, false);
            while text.starts_with("{ posts") != on_posts {
                text = fragment_chain(&mut rng, 25_000, false);
            }
            assert!(text.len() <= MAX_DOCUMENT_BYTES, "{}", text.len());
            assert!(walk(&DocumentCache::new(10), &text), "the chain parses");
            text
        });
        // async-graphql's validation and executor walk it too: they must answer.
        let response = on_worker_stack(move || {
            let schema = crate::graphql::schema::builder().finish();
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(schema.execute(text.as_str()))
        });
        assert!(
            response.is_ok() || !response.errors.is_empty(),
            "{response:?}"
        );
    }
}
