//! The deployment files that cannot run here (no Docker engine, no
//! Kubernetes) parse, and agree with each other and with the settings: every
//! `FEEDGATE_*` variable names a real setting, ports, user, probe paths,
//! labels and the purge path line up.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
const DEFAULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml");

/// Every document of a YAML (or TOML) file as JSON, read by Python's parsers.
fn documents(path: &Path) -> Vec<Value> {
    let script = "import sys, json, tomllib, yaml\n\
                  p = sys.argv[1]\n\
                  docs = [tomllib.load(open(p, 'rb'))] if p.endswith('.toml') \
                  else list(yaml.safe_load_all(open(p)))\n\
                  print(json.dumps(docs))";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 with PyYAML runs");
    assert!(
        output.status.success(),
        "{} does not parse: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from python")
}

/// Every manifest in deploy/k8s but the kustomization.
fn manifests() -> Vec<Value> {
    let dir = Path::new(DEPLOY).join("k8s");
    let files = std::fs::read_dir(&dir).expect("deploy/k8s exists");
    files
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() != "kustomization.yaml")
        .flat_map(|entry| documents(&entry.path()))
        .collect()
}

fn find<'a>(manifests: &'a [Value], kind: &str) -> &'a Value {
    let mut found = manifests.iter().filter(|doc| doc["kind"] == kind);
    found
        .next()
        .unwrap_or_else(|| panic!("no {kind} in deploy/k8s"))
}

/// Fails on a `FEEDGATE_SECTION__KEY` that names no setting in default.toml.
fn assert_settings_exist(variables: impl Iterator<Item = String>, source: &str) {
    let defaults = &documents(Path::new(DEFAULTS))[0];
    let short = ["FEEDGATE_LISTEN", "FEEDGATE_JWT_SECRET", "FEEDGATE_CONFIG"];
    for name in variables.filter(|name| name.starts_with("FEEDGATE_")) {
        if short.contains(&name.as_str()) {
            continue;
        }
        let path = name["FEEDGATE_".len()..].to_lowercase();
        let mut setting = defaults;
        for part in path.split("__") {
            setting = &setting[part];
        }
        assert!(
            !setting.is_null(),
            "{source}: {name} names no setting in config/default.toml"
        );
    }
}

fn port_of(address: &Value) -> u64 {
    let text = address.as_str().expect("an address");
    text.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

#[test]
fn kubernetes_manifests_agree_with_each_other_and_the_image() {
    let manifests = manifests();
    let k8s = |kind| find(&manifests, kind);
    let config = k8s("ConfigMap");
    let deployment = k8s("Deployment");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let ports: Vec<(String, u64)> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(ports.contains(&("http".into(), port_of(&config["data"]["FEEDGATE_LISTEN"]))));
    let ops_port = port_of(&config["data"]["FEEDGATE_SERVER__OPS_LISTEN"]);
    assert!(ports.contains(&("ops".into(), ops_port)), "{ports:?}");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "ops");
    let sources: Vec<&str> = container["envFrom"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["configMapRef"]["name"].as_str())
        .collect();
    assert_eq!(sources, [config["metadata"]["name"].as_str().unwrap()]);
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"],
        ops_port.to_string()
    );
    assert_settings_exist(
        config["data"].as_object().unwrap().keys().cloned(),
        "configmap.yaml",
    );

    let dockerfile = std::fs::read_to_string(Path::new(DEPLOY).join("Dockerfile")).unwrap();
    let uid = pod["spec"]["securityContext"]["runAsUser"]
        .as_u64()
        .unwrap();
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "the image runs as {uid}"
    );
    assert!(
        dockerfile.contains("/healthz"),
        "the image's HEALTHCHECK probes /healthz"
    );

    let labels = &pod["metadata"]["labels"];
    for kind in ["Service", "PodDisruptionBudget"] {
        let resource = k8s(kind);
        let selector = &resource["spec"]["selector"];
        let selector = selector.get("matchLabels").unwrap_or(selector);
        for (key, value) in selector.as_object().unwrap() {
            assert_eq!(&labels[key], value, "{kind} selects {key}={value}");
        }
    }
    assert_eq!(k8s("Service")["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        k8s("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    assert_eq!(
        k8s("Job")["spec"]["template"]["spec"]["containers"][0]["args"][0],
        "migrate"
    );

    let kustomization = &documents(&Path::new(DEPLOY).join("k8s/kustomization.yaml"))[0];
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for entry in std::fs::read_dir(Path::new(DEPLOY).join("k8s")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "kustomization.yaml" {
            assert!(
                listed.contains(&name.as_str()),
                "kustomization.yaml misses {name}"
            );
        }
    }
}

#[test]
fn the_compose_file_matches_the_varnish_config_and_the_settings() {
    let compose = &documents(&Path::new(DEPLOY).join("compose.yaml"))[0];
    let services = compose["services"].as_object().expect("services");
    for name in ["mariadb", "redis", "migrate", "varnish"] {
        assert!(services.contains_key(name), "no {name} service");
    }
    assert_eq!(services["migrate"]["command"][0], "migrate");
    let vcl = std::fs::read_to_string(Path::new(DEPLOY).join("varnish.vcl")).unwrap();
    for i in 1..=3 {
        let name = format!("feedgate{i}");
        let service = &services[&name];
        assert!(service.is_object(), "no {name} service");
        assert!(
            vcl.contains(&format!(
                r#"backend {name} {{ .host = "{name}"; .port = "8080";"#
            )),
            "varnish.vcl has no backend for {name}"
        );
        let env = service["environment"].as_object().expect("environment");
        assert_eq!(port_of(&env["FEEDGATE_LISTEN"]), 8080);
        let purge = env["FEEDGATE_CACHE__PURGE_URL"].as_str().unwrap();
        let path = purge.splitn(4, '/').nth(3).map(|p| format!("/{p}"));
        assert_eq!(path.as_deref(), Some("/purge"), "{purge}");
        assert!(vcl.contains(r#"req.url == "/purge""#));
        assert_settings_exist(env.keys().cloned(), "compose.yaml");
    }
    let env_example =
        std::fs::read_to_string(Path::new(DEPLOY).join("feedgate.env.example")).unwrap();
    let names = env_example
        .lines()
        .map(|line| line.trim_start_matches('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.to_owned()));
    assert_settings_exist(names, "feedgate.env.example");
}
