//! The providers' own API shapes: a client written against a provider's documentation talks
//! to purse by changing its base URL and keys.

use axum::Router;

use crate::AppState;

/// Every dialect's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
