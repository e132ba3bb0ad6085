//! The corpus of requests read two ways (tests/smuggling/): every case file parses, and the
//! reader reads the format as documented. Sending each one to nginx and to slogate is
//! `needs/nginx/nginx_parity.rs`.

use crate::support::{root, smuggling};

#[test]
fn smuggling_case_files_parse() {
    use smuggling::*;
    let cases = load(&root().join("tests/smuggling"));
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let c = parse_case(
        "x.http",
        "name: x\nupstream: POST /a a\\r\\nb\n\nGET / HTTP/1.1\\r\\n\nX: {{3*ab}}\\x41\\0\\r\\n\\r\\n\n",
    )
    .unwrap();
    assert_eq!(c.request, b"GET / HTTP/1.1\r\nX: abababA\0\r\n\r\n");
    assert_eq!(c.upstream[0].2, b"a\r\nb");
    assert!(
        parse_case(
            "y.http",
            "name: y\nexpect_slogate: 400\n\nGET / HTTP/1.1\\r\\n\\r\\n"
        )
        .is_err(),
        "a difference needs a why"
    );
    assert_eq!(statuses(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"), vec![100, 200, 400]);
}
