//! Sans-IO node core (placeholder).
