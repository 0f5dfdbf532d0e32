"""The documentation's examples are real: every full YAML config in doc/*.md (a ```yaml block
that does not start with "# fragment") is accepted by `weft validate`."""

import glob
import os
import re

from harness import REPO, check, run_weft, tmp_path, write_file


def _blocks():
    for path in sorted(glob.glob(os.path.join(REPO, "doc", "*.md"))):
        text = open(path).read()
        for i, m in enumerate(re.finditer(r"```yaml\n(.*?)```", text, re.S)):
            body = m.group(1)
            if body.lstrip().startswith("# fragment"):
                continue
            line = text[:m.start()].count("\n") + 2
            yield os.path.basename(path), line, body


def test_doc_configs_validate():
    bad = []
    n = 0
    for name, line, body in _blocks():
        n += 1
        # access logs in examples may point at /var/log: validate checks that the file could be
        # opened, so point them at a temporary directory
        body = re.sub(r"path: /var/log/[^\s]+", "path: " + tmp_path("doc.log"), body)
        # relative paths (examples/tls/*.crt) are relative to the repository
        p = run_weft(["validate", write_file(tmp_path("doc.yaml"), body)], cwd=REPO)
        if p.returncode != 0:
            bad.append("%s:%d: %s" % (name, line, p.stderr.strip()))
    check(n >= 10, "expected the docs to carry at least 10 full example configs, found %d", n)
    check(not bad, "doc examples refused by weft validate:\n%s", "\n".join(bad))
