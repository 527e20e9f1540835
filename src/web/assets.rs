//! The pages' scripts and styles, compiled into the binary (one file to deploy, no CDN).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (file name, content type, contents) of everything under `/static/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "board.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/board.js"),
    ),
    (
        "board.css",
        "text/css; charset=utf-8",
        include_str!("../../static/board.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../static/favicon.svg"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/live.js"),
    ),
    (
        "tiles.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/tiles.js"),
    ),
    (
        "supervisor.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/supervisor.js"),
    ),
    (
        "exports.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/exports.js"),
    ),
    (
        "trends.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/trends.js"),
    ),
    (
        "supervisor.css",
        "text/css; charset=utf-8",
        include_str!("../../static/supervisor.css"),
    ),
];

/// `GET /static/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
