//! The committed GraphQL contract: `schema.graphql` must equal the server's SDL.

#[test]
fn committed_schema_matches_the_code() {
    let committed = include_str!("../../../schema.graphql");
    let current = herald_server::graphql::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date: regenerate it with\n  \
         cargo run -p herald-server --bin herald -- print-schema > schema.graphql\n\
         and review the diff"
    );
}
