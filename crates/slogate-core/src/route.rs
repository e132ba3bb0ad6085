//! Names plain HTTP requests as `METHOD /route/template`.
//!
//! Configured templates (`/api/v1/courses/:id`, `/files/*path`) are tried first, in order;
//! otherwise ID-like path segments (integers, UUIDs, long hex strings) become `:id`, so
//! `/api/v1/courses/42` and `/api/v1/courses/43` are one operation.

use std::collections::HashSet;

/// One configured route template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTemplate {
    method: Option<String>,
    segments: Vec<Segment>,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
    /// `*name`: the rest of the path, possibly empty.
    Rest,
}

/// A template that cannot be used, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

impl RouteTemplate {
    /// Parses `"/api/v1/courses/:id"` or `"GET /api/v1/courses/:id"`.
    pub fn parse(spec: &str) -> Result<RouteTemplate, TemplateError> {
        let spec = spec.trim();
        let (method, path) = match spec.split_once(' ') {
            Some((m, p)) => (Some(m.trim().to_ascii_uppercase()), p.trim()),
            None => (None, spec),
        };
        if let Some(m) = &method {
            if !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(TemplateError(format!("{m:?} is not an HTTP method")));
            }
        }
        if !path.starts_with('/') {
            return Err(TemplateError(format!("{path:?} must start with '/'")));
        }
        let mut segments = Vec::new();
        let parts: Vec<&str> = path[1..].split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() {
                    return Err(TemplateError(format!(
                        "{path:?}: ':' needs a parameter name"
                    )));
                }
                Segment::Param
            } else if let Some(_name) = part.strip_prefix('*') {
                if i + 1 != parts.len() {
                    return Err(TemplateError(format!(
                        "{path:?}: '*' must be the last segment"
                    )));
                }
                Segment::Rest
            } else {
                Segment::Literal((*part).to_string())
            };
            segments.push(seg);
        }
        Ok(RouteTemplate {
            method,
            segments,
            text: path.to_string(),
        })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        let mut parts = path[1..].split('/');
        for seg in &self.segments {
            match seg {
                Segment::Rest => return parts.next().is_some_and(|p| !p.is_empty()),
                Segment::Param => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(l) => {
                    if parts.next() != Some(l.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

/// Names HTTP requests; built once from configuration.
#[derive(Clone, Debug, Default)]
pub struct RouteNamer {
    templates: Vec<RouteTemplate>,
    excluded: HashSet<String>,
}

/// The methods kept as they are in labels; anything else is `OTHER`.
pub const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

impl RouteNamer {
    /// A namer with `templates` tried in order, ignoring the `excluded` paths (health checks).
    pub fn new(templates: Vec<RouteTemplate>, excluded: impl IntoIterator<Item = String>) -> Self {
        RouteNamer {
            templates,
            excluded: excluded.into_iter().collect(),
        }
    }

    /// Whether a path is excluded from metrics.
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excluded.contains(strip_query(path))
    }

    /// `METHOD /template` for a request, or `None` for excluded paths.
    pub fn name(&self, method: &str, path: &str) -> Option<String> {
        let path = strip_query(path);
        if self.excluded.contains(path) {
            return None;
        }
        let method = label_method(method);
        let path = if path.starts_with('/') { path } else { "/" };
        if let Some(t) = self.templates.iter().find(|t| t.matches(method, path)) {
            return Some(format!("{method} {}", t.text));
        }
        let mut out = String::with_capacity(method.len() + 1 + path.len());
        out.push_str(method);
        out.push(' ');
        for (i, seg) in path[1..].split('/').enumerate() {
            out.push('/');
            if i > 0 || !seg.is_empty() {
                out.push_str(if is_id_like(seg) { ":id" } else { seg });
            }
        }
        Some(out)
    }
}

fn strip_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

fn label_method(method: &str) -> &str {
    KNOWN_METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("OTHER")
}

/// Integers, UUIDs and hex strings of 16 or more characters identify records, not routes.
pub fn is_id_like(seg: &str) -> bool {
    if seg.is_empty() {
        return false;
    }
    if seg.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if is_uuid(seg) {
        return true;
    }
    seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_uuid(seg: &str) -> bool {
    let b = seg.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namer(templates: &[&str]) -> RouteNamer {
        RouteNamer::new(
            templates
                .iter()
                .map(|t| RouteTemplate::parse(t).unwrap())
                .collect(),
            ["/up".to_string()],
        )
    }

    #[test]
    fn normalises_ids() {
        let n = namer(&[]);
        assert_eq!(
            n.name("GET", "/api/v1/courses/42").unwrap(),
            "GET /api/v1/courses/:id"
        );
        assert_eq!(
            n.name("get", "/u/123e4567-e89b-12d3-a456-426614174000/x?y=1")
                .unwrap(),
            "GET /u/:id/x"
        );
        assert_eq!(
            n.name("DELETE", "/t/deadbeefdeadbeef").unwrap(),
            "DELETE /t/:id"
        );
        assert_eq!(n.name("GET", "/t/deadbeef").unwrap(), "GET /t/deadbeef");
        assert_eq!(n.name("GET", "/").unwrap(), "GET /");
        assert_eq!(n.name("GET", "/a/").unwrap(), "GET /a/");
        assert_eq!(n.name("BREW", "/pot").unwrap(), "OTHER /pot");
        assert_eq!(n.name("GET", "/up"), None);
        assert_eq!(n.name("GET", "/up?x=1"), None);
    }

    #[test]
    fn templates_win_in_order() {
        let n = namer(&["GET /courses/:slug", "/files/*path", "/courses/:slug/edit"]);
        assert_eq!(
            n.name("GET", "/courses/intro-to-rust").unwrap(),
            "GET /courses/:slug"
        );
        assert_eq!(
            n.name("POST", "/courses/intro").unwrap(),
            "POST /courses/intro"
        );
        assert_eq!(
            n.name("PUT", "/courses/x/edit").unwrap(),
            "PUT /courses/:slug/edit"
        );
        assert_eq!(
            n.name("GET", "/files/a/b/c.pdf").unwrap(),
            "GET /files/*path"
        );
        assert_eq!(n.name("GET", "/files").unwrap(), "GET /files");
    }

    #[test]
    fn bad_templates_say_why() {
        assert!(RouteTemplate::parse("courses").is_err());
        assert!(RouteTemplate::parse("/a/*rest/b").is_err());
        assert!(RouteTemplate::parse("/a/:").is_err());
        assert!(RouteTemplate::parse("G3T /a").is_err());
    }
}
