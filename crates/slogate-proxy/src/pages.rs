//! Error pages for errors slogate generates (the app's `public/502.html`, as nginx's
//! `error_page`), and the maintenance switch (a file's presence, or the admin endpoint).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use slogate_config::Config;

/// Pages loaded at start; a page missing from `public/` falls back to a default page like nginx's.
pub struct Pages {
    error_pages: Vec<(u16, Bytes)>,
    maintenance_page: Option<Bytes>,
    maintenance_file: Option<PathBuf>,
    maintenance_allow: Vec<String>,
    /// Switched on by the admin endpoint.
    forced: AtomicBool,
    /// The file check's last result and when (ms since epoch), so the disk is asked at most
    /// every 250 ms rather than once per request.
    file_present: AtomicBool,
    file_checked_ms: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Pages {
    /// Loads the pages named by `config`.
    pub fn load(config: &Config) -> Pages {
        let root = config.static_files.root.as_ref();
        let mut error_pages = Vec::new();
        if config.pages.error_pages {
            if let Some(root) = root {
                for code in [500u16, 502, 503, 504] {
                    if let Ok(body) = std::fs::read(root.join(format!("{code}.html"))) {
                        error_pages.push((code, Bytes::from(body)));
                    }
                }
            }
        }
        let maintenance_page = config
            .pages
            .maintenance_page
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(Bytes::from);
        Pages {
            error_pages,
            maintenance_page,
            maintenance_file: config.pages.maintenance_file.clone(),
            maintenance_allow: config.pages.maintenance_allow.clone(),
            forced: AtomicBool::new(false),
            file_present: AtomicBool::new(false),
            file_checked_ms: AtomicU64::new(0),
        }
    }

    /// The page for an error status: `<code>.html`; else, for the gateway errors (502, 503,
    /// 504), `502.html`; else `500.html` for any 5xx (as Rails apps' nginx `error_page` does).
    pub fn error_page(&self, code: u16) -> Option<&Bytes> {
        let page = |c: u16| {
            self.error_pages
                .iter()
                .find(|(p, _)| *p == c)
                .map(|(_, b)| b)
        };
        page(code)
            .or_else(|| matches!(code, 503 | 504).then(|| page(502)).flatten())
            .or_else(|| (500..600).contains(&code).then(|| page(500)).flatten())
    }

    /// Turns the admin switch on or off.
    pub fn set_forced(&self, on: bool) {
        self.forced.store(on, Ordering::Relaxed);
    }

    /// Whether maintenance is on (by the admin switch or the file).
    pub fn maintenance_on(&self) -> bool {
        if self.forced.load(Ordering::Relaxed) {
            return true;
        }
        let Some(file) = &self.maintenance_file else {
            return false;
        };
        let now = now_ms();
        let checked = self.file_checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(checked) >= 250 {
            self.file_checked_ms.store(now, Ordering::Relaxed);
            self.file_present.store(file.exists(), Ordering::Relaxed);
        }
        self.file_present.load(Ordering::Relaxed)
    }

    /// Whether `path` still goes through during maintenance.
    pub fn allowed_in_maintenance(&self, path: &str) -> bool {
        self.maintenance_allow.iter().any(|a| a == path)
    }

    /// The HTML body slogate answers `code` with: the maintenance page (503 while in
    /// maintenance), the app's page for the code, or a default page like nginx's own, so a
    /// generated error is never an empty body.
    pub fn body_for(&self, code: u16) -> Bytes {
        let configured = if code == 503 && self.maintenance_on() {
            self.maintenance_page
                .clone()
                .or_else(|| self.error_page(code).cloned())
        } else {
            self.error_page(code).cloned()
        };
        configured.unwrap_or_else(|| default_page(code))
    }
}

/// A page like nginx's default error page: status and reason, HTML.
pub fn default_page(code: u16) -> Bytes {
    let reason = http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    Bytes::from(format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>slogate</center>\r\n</body>\r\n</html>\r\n"
    ))
}
