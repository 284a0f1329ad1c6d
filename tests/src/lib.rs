//! beacon-e2e: helpers for end-to-end tests that run Beacon's daemons against real servers.
