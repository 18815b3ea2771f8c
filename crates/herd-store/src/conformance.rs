//! The engine-independent test story; see `run_all`.
