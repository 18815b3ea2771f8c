//! herd's HTTP API: the serveradmin-compatible endpoints, auth middleware, ACLs. Only this crate knows HTTP on the server side.
