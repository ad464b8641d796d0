"""The programs `edgecompress ship` runs on a board, as Python source for `python -c` (standard library,
plus NumPy for the smoke inference). Paths arrive as argv entries, never formatted into the source;
each program prints one JSON document.

Install layout (PATH is --path, e.g. /opt/models/cifar):

    PATH                      a symlink to the current release, replaced atomically (rename over it)
    .NAME.releases/<id>/      one folder per installed bundle; the previous one is kept for rollback
"""

from __future__ import annotations

#: `stage RELEASE_DIR CACHED NAME [CACHED NAME...]`: copy verified cache files into a fresh release folder
STAGE = r"""
import json, os, shutil, sys
release, pairs = os.path.expanduser(sys.argv[1]), sys.argv[2:]
try:
    parent = os.path.dirname(release)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    if os.path.lexists(release):
        shutil.rmtree(release)
    temp = release + ".staging"
    if os.path.lexists(temp):
        shutil.rmtree(temp)
    os.makedirs(temp, mode=0o755)
    for source, name in zip(pairs[0::2], pairs[1::2]):
        target = os.path.join(temp, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)
        with open(target, "rb") as handle:
            os.fsync(handle.fileno())
    os.rename(temp, release)
    print(json.dumps({"release": release}))
except OSError as error:
    print(json.dumps({"error": "%s: %s" % (getattr(error, "filename", None) or release, error.strerror or error)}))
"""

#: `hashes DIR NAME...` -> {"sha256": {NAME: hex | null}, "bytes": {NAME: n | null}}, read through DIR (a link is followed)
HASHES = r"""
import hashlib, json, os, sys
folder, names = os.path.expanduser(sys.argv[1]), sys.argv[2:]
digests, sizes = {}, {}
for name in names:
    path = os.path.join(folder, name)
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digests[name], sizes[name] = digest.hexdigest(), os.path.getsize(path)
    except (IOError, OSError):
        digests[name], sizes[name] = None, None
print(json.dumps({"sha256": digests, "bytes": sizes}))
"""

#: `smoke RELEASE_DIR MODEL INPUT_NPY`: the bundle's own runner loads the model and scores each input at batch 1
SMOKE = r"""
import json, os, sys
release = os.path.expanduser(sys.argv[1])
sys.path.insert(0, release)
import edgecompress_runner as runner
try:
    with runner.stdout_to_stderr():
        np = runner._numpy()
        model = os.path.join(release, sys.argv[2])
        runtime = runner.import_runtime(model, "auto", lambda message: None)
        session = runtime.load(model, 1)
        x = np.load(os.path.join(release, sys.argv[3]), allow_pickle=False)
        scores = [[float(v) for v in session.run(x[i:i + 1])[0]] for i in range(len(x))]
    print(json.dumps({"runtime": {"name": runtime.name, "version": runtime.version}, "scores": scores}))
except runner.RunnerError as error:
    print(json.dumps(error.as_json()))
"""

#: `activate LINK RELEASE_DIR`: point LINK at RELEASE_DIR atomically; keep the previous release, drop older ones
ACTIVATE = r"""
import json, os, shutil, sys
link, release = os.path.expanduser(sys.argv[1]), os.path.expanduser(sys.argv[2])
if os.path.lexists(link) and not os.path.islink(link):
    print(json.dumps({"error": "%s exists and is not an edgecompress install (not a symlink to a release)" % link}))
    sys.exit(0)
previous = os.path.realpath(link) if os.path.islink(link) else None
temp = "%s.%d.tmp" % (link, os.getpid())
try:
    if os.path.lexists(temp):
        os.remove(temp)
    os.symlink(release, temp)
    os.replace(temp, link)
except OSError as error:
    print(json.dumps({"error": "%s: %s" % (link, error.strerror or error)}))
    sys.exit(0)
releases = os.path.dirname(release)
keep = {os.path.realpath(release), previous}
removed = []
for name in os.listdir(releases):
    path = os.path.join(releases, name)
    if os.path.realpath(path) not in keep and os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(name)
print(json.dumps({"path": link, "release": release, "previous": previous, "removed": removed}))
"""

#: `discard RELEASE_DIR`: remove a release that failed its checks (never the one a link points at)
DISCARD = r"""
import json, os, shutil, sys
release = os.path.expanduser(sys.argv[1])
shutil.rmtree(release, ignore_errors=True)
shutil.rmtree(release + ".staging", ignore_errors=True)
print(json.dumps({"removed": release}))
"""
