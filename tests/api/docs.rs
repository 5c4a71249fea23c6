use crate::helpers::spawn_app;

#[tokio::test]
async fn docs_page_renders_from_embedded_assets() {
    let app = spawn_app().await;
    let resp = app.get("/docs", None).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("/docs/swagger-ui-bundle.js"));
    assert!(page.contains("/openapi.json"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no CDN: {page}"
    );

    let js = app.get("/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.bytes().await.unwrap().len() > 100_000);
    let css = app.get("/docs/swagger-ui.css", None).await;
    assert_eq!(css.status(), 200);
}

#[tokio::test]
async fn openapi_json_is_served() {
    let app = spawn_app().await;
    let resp = app.get("/openapi.json", None).await;
    assert_eq!(resp.status(), 200);
    let served: serde_json::Value = resp.json().await.unwrap();
    let expected: serde_json::Value = serde_json::from_str(&dlgrade::api::openapi_json()).unwrap();
    assert_eq!(served, expected);
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
}
