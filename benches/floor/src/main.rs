//! `floor LISTEN UPSTREAM`: hyper 1.x's HTTP/1 server on a current-thread tokio runtime,
//! forwarding every request to UPSTREAM over hyper-util's pooled client and streaming the
//! answer back; a 502 when the upstream fails. Nothing else (but the client's `Connection`
//! header, which is not forwarded): it is what hyper costs before
//! slogate adds its work (the engine prototype `bare_hyper` of issue #10, kept in the tree so
//! that the peer benchmark can run it beside the others).

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: floor LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let upstream: &'static str = Box::leak(upstream.into_boxed_str());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        // Ends on SIGINT (which a background job of a script starts with ignored) or SIGTERM.
        tokio::select! {
            () = serve(&listen, upstream) => {}
            _ = tokio::signal::ctrl_c() => {}
            () = terminated() => {}
        }
    });
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

async fn serve(listen: &str, upstream: &'static str) {
    let client: Client<_, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    let listener = TcpListener::bind(listen).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        tokio::spawn(async move {
            let service = service_fn(move |mut req: Request<Incoming>| {
                let client = client.clone();
                async move {
                    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    let uri: Uri = format!("http://{upstream}{target}").parse().expect("uri");
                    *req.uri_mut() = uri;
                    // The one edit every proxy makes: the client's `Connection` (a
                    // `close` would otherwise end each pooled upstream connection).
                    req.headers_mut().remove(hyper::header::CONNECTION);
                    let answer: Response<BoxBody<Bytes, hyper::Error>> =
                        match client.request(req).await {
                            Ok(r) => r.map(BodyExt::boxed),
                            Err(_) => {
                                let mut r = Response::new(
                                    Empty::new().map_err(|never| match never {}).boxed(),
                                );
                                *r.status_mut() = StatusCode::BAD_GATEWAY;
                                r
                            }
                        };
                    Ok::<_, hyper::Error>(answer)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
