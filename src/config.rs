//! TODO(stub): filled in by the foundation work.
