//! The command line: exit codes 0 (ok), 1 (failure), 2 (bad usage or configuration), and
//! messages that name the file and the key.

use std::process::Command;

use crate::support::*;

fn slogate(args: &[&str]) -> (i32, String) {
    let out = Command::new(slogate_bin())
        .args(args)
        .output()
        .expect("run slogate");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_accepts_the_example_configurations() {
    for file in ["proxy-config/slogate.yaml", "proxy-config/rails-edge.yaml"] {
        let path = root().join(file);
        let (code, text) = slogate(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{file}: {text}");
        assert!(text.starts_with("ok: "), "{text}");
    }
    let (code, text) = slogate(&[
        "check",
        "--config",
        root().join("proxy-config/slogate.yaml").to_str().unwrap(),
        "--slo",
        root().join("proxy-config/slo.yaml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn configuration_mistakes_exit_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "upstream:\n  backends: [\"127.0.0.1:3000\", \"nowhere\"]\n  connect_timeout: 5\n",
    )
    .unwrap();
    let (code, text) = slogate(&["check", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(&format!(
            "{}: upstream.connect_timeout: 5 has no unit; write e.g. 5s or 5ms",
            bad.display()
        )),
        "{text}"
    );
    std::fs::write(
        &bad,
        "upstream:\n  backends: [\"127.0.0.1:3000\", \"nowhere\"]\n",
    )
    .unwrap();
    let (code, text) = slogate(&["run", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "run refuses a bad file too: {text}");
    assert!(
        text.contains("upstream.backends[1]: \"nowhere\" is not host:port or unix:/path"),
        "{text}"
    );
    let (code, text) = slogate(&["check", "--upstream", "no-such-host.invalid:3000"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("upstream.backends: cannot resolve no-such-host.invalid:3000"),
        "{text}"
    );
    let (code, text) = slogate(&["check", "--config", "/nope.yaml"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("/nope.yaml: cannot read"), "{text}");
}

#[test]
fn tls_material_is_loaded_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(&key, "junk").unwrap();
    let conf = dir.path().join("tls.yaml");
    std::fs::write(
        &conf,
        format!(
            "server:\n  tls:\n    listen: [\"127.0.0.1:8443\"]\n    cert: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let (code, text) = slogate(&["check", "--config", conf.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("server.tls: cannot load"), "{text}");
    let (code, text) = slogate(&["run", "--config", conf.to_str().unwrap()]);
    assert_eq!(code, 2, "run refuses it before starting: {text}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _) = slogate(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, text) = slogate(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["run", "check", "slo"] {
        assert!(text.contains(sub), "{text}");
    }
}

#[test]
fn jobs_configuration_is_checked_too() {
    let (code, text) = slogate(&[
        "check",
        "--config",
        root().join("proxy-config/slogate.yaml").to_str().unwrap(),
        "--jobs",
        root().join("proxy-config/jobs.yaml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("jobs.yaml");
    std::fs::write(&bad, "redis:\n  urll: redis://x\n").unwrap();
    let (code, text) = slogate(&["check", "--jobs", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("redis.urll"), "{text}");
}

#[test]
fn the_slo_tooling_knows_the_job_histogram() {
    assert_eq!(
        slogate_slo::DEFAULT_JOB_BUCKETS.as_slice(),
        slogate_jobs::DEFAULT_JOB_BUCKETS
    );
    assert_eq!(slogate_slo::DEFAULT_BUCKETS, slogate_core::DEFAULT_BUCKETS);
}
