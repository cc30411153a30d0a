//! Herald plugin SDK (the WIT interface and helpers arrive with the plugin host).
