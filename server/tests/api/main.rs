//! Herald's API tests: the real server (router, GraphQL, services) on a fresh Postgres
//! database per test, exercised over HTTP and WebSocket. Run through `scripts/test`, which
//! provides `DATABASE_URL` and `REDIS_URL`.

mod fakes;
mod harness;

mod approval;
mod auth;
mod authorization;
mod bluesky;
mod compiled;
mod conformance;
mod connections;
mod dataloader;
mod discord;
mod documents;
mod facebook;
mod health;
mod http;
mod instagram;
mod keys;
mod layout;
mod linkedin;
mod mastodon;
mod matrix;
mod media;
mod meta;
mod oauth;
mod plugins;
mod posts;
mod processes;
mod publishing;
mod queue;
mod queue_scopes;
mod rate_limits;
mod restarts;
mod rules;
mod schedule;
mod schema;
mod slots;
mod store;
mod subscriptions;
mod telegram;
mod tenancy;
mod threads;
mod token_refresh;
mod webhooks;
mod x;
