//! REST API of the daemon: thin HTTP to Action translators, problem details, OpenAPI.
