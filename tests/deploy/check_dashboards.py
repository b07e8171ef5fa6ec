#!/usr/bin/python3
"""Checks the Grafana dashboard and the Prometheus rules against a real
server and a real Prometheus, both on loopback.

  check_dashboards.py CASEWORKD CASECTL SOURCE_DIR

Starts caseworkd (TLS with a certificate made by openssl, callers named by
metadata as in development, metrics on), drives some traffic with casectl,
starts Prometheus scraping it every second with deploy/prometheus/rules.yml
loaded, then: every panel query of the dashboard must parse and
return series; every rule must evaluate without error; and every metric a
query names must be one the server exports. Exits non-zero listing each
problem.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("timed out waiting for " + what)


def main():
    caseworkd, casectl, source = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="casework-dash-")
    grpc_port, metrics_port, prom_port = free_port(), free_port(), free_port()
    procs = []
    try:
        cert, key = work + "/cert.pem", work + "/key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        with open(work + "/caseworkd.json", "w") as f:
            json.dump({"tls": {"certFile": cert, "keyFile": key},
                       "auth": {"headerIdentity": True}}, f)
        server = subprocess.Popen(
            [caseworkd, "--config=" + work + "/caseworkd.json", "--data-dir=" + work + "/data",
             "--listen=127.0.0.1:%d" % grpc_port, "--metrics=127.0.0.1:%d" % metrics_port],
            stderr=open(work + "/caseworkd.log", "w"))
        procs.append(server)
        metrics_url = "http://127.0.0.1:%d/metrics" % metrics_port
        wait_for("caseworkd metrics", lambda: "casework_cases" in get(metrics_url), 30)

        def ctl(role, *args):
            return subprocess.run(
                [casectl, "--server=127.0.0.1:%d" % grpc_port, "--ca=" + cert, "--principal=dash",
                 "--role=" + role]
                + list(args), capture_output=True, text=True)

        def traffic():
            for i in range(3):
                out = ctl("ops", "--json", "call", "TradeInService/CreateTradeIn", json.dumps({
                    "tradeIn": {"vNumber": "V77%05d" % (i + int(time.time()) % 1000 * 10),
                                "sNumber": "S7700000", "productName": "Galaxy S22",
                                "problem": "TRADE_IN_PROBLEM_DEVICE_LOCKED",
                                "customer": {"displayName": "Jan", "email": "jan@example.nl"}}}))
                if out.returncode != 0:
                    raise SystemExit("casectl create failed: " + out.stdout + out.stderr)
                name = json.loads(out.stdout)["name"]
                ctl("cs_agent", "act", name, "ContactCustomer")
                ctl("cs_agent", "act", name, "RecordUnlockCode", "unlock_code=1234")
            ctl("ops", "call", "TradeInService/CreateTradeIn", "{}")  # an error, on purpose
            ctl("cs_agent", "boards")
            out = ctl("admin", "backups", "create")
            if out.returncode != 0:
                raise SystemExit("casectl backups create failed: " + out.stdout + out.stderr)

        traffic()
        rules = os.path.join(source, "deploy/prometheus/rules.yml")
        shutil.copy(rules, work + "/rules.yml")
        with open(work + "/prometheus.yml", "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - rules.yml\n"
                    "scrape_configs:\n  - job_name: casework\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % metrics_port)
        prom = subprocess.Popen(
            ["prometheus", "--config.file=" + work + "/prometheus.yml",
             "--storage.tsdb.path=" + work + "/tsdb", "--web.listen-address=127.0.0.1:%d" % prom_port],
            stdout=subprocess.DEVNULL, stderr=open(work + "/prometheus.log", "w"))
        procs.append(prom)
        api = "http://127.0.0.1:%d/api/v1/" % prom_port

        def query(expr):
            return json.loads(get(api + "query?" + urllib.parse.urlencode({"query": expr})))

        def up():
            r = query('up{job="casework"}')
            return r["data"]["result"] and r["data"]["result"][0]["value"][1] == "1"
        wait_for("Prometheus to scrape caseworkd", up, 60)
        time.sleep(3)
        traffic()  # rates need samples on both sides of a change
        time.sleep(4)

        problems = []
        exported = set(re.findall(r"^# TYPE (\S+)", get(metrics_url), re.M))
        dashboard = json.load(open(os.path.join(source, "deploy/grafana/dashboards/casework.json")))
        exprs = []
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                exprs.append(target["expr"])
                r = query(target["expr"])
                if r.get("status") != "success":
                    problems.append("panel %r: %s does not run: %s" % (panel["title"], target["expr"], r))
                elif not r["data"]["result"]:
                    problems.append("panel %r: %s returns no series" % (panel["title"], target["expr"]))
        rule_state = json.loads(get(api + "rules"))
        evaluated = 0
        for group in rule_state["data"]["groups"]:
            for rule in group["rules"]:
                exprs.append(rule["query"])
                evaluated += 1
                if rule.get("health") != "ok" or rule.get("lastError"):
                    problems.append("rule %s: health %s %s" % (rule["name"], rule.get("health"),
                                                              rule.get("lastError", "")))
        if evaluated == 0:
            problems.append("Prometheus loaded no rules from rules.yml")
        for expr in exprs:
            for name in re.findall(r"(?<![:\w])((?:casework|grpc_server)_[a-z_]+)", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                if name not in exported and base not in exported:
                    problems.append("%s names %s, which the server does not export" % (expr, name))
        if problems:
            print("\n".join(problems))
            return 1
        print("%d panel queries returned series; %d rules evaluated; metrics all exported"
              % (sum(len(p.get("targets", [])) for p in dashboard["panels"]), evaluated))
        return 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
