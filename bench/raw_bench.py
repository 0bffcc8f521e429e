#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Raw export/import and backup/restore benchmark for swift-efs, ratios measured side by side in one run.

    swift build -c release && python3 bench/raw_bench.py [--sizes 1M,64M,1G] [--files 10000] [--dir /work/bench-tmp]

Rows:
  export  efs raw export BACKING -o OUT       vs  cat BACKING > OUT           (goal ≥ 0.9×)
  import  efs raw import STREAM DST           vs  cp STREAM DST2              (goal ≥ 0.8×)
  backup  efs backup TREE -o A.tar            vs  tar -cf B.tar TREE          (goal ≥ 0.7×, 10 000 small files)
  restore efs restore A.tar -C D              vs  tar -xf B.tar -C D2
Each timing is the best of --repeat runs, with the output fsynced by both sides (sync after each command).
Peak RSS of every efs run is recorded (getrusage of the child) to show it does not grow with file size.
"""
import argparse, os, resource, shutil, subprocess, sys, tempfile, time

def parse_size(s):
    m = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * m[s[-1]] if s[-1] in m else int(s)

def run(cmd, env, stdout=None):
    """Runs cmd, returns (seconds, peak RSS in KiB of this child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE)
    subprocess.run(["sync"])
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}: {r.stderr.decode()}")
    # ru_maxrss of RUSAGE_CHILDREN is the max over all children so far; run each efs measurement in a fresh
    # python child to get its own peak.
    return dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

def peak_rss(cmd, env):
    code = ("import resource,subprocess,sys;subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code] + cmd, env=env, capture_output=True, check=True)
    return int(out.stdout.strip())

def best(n, f):
    return min(f() for _ in range(n))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--efs", default=".build/release/efs")
    ap.add_argument("--sizes", default="1M,64M,1G")
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", default="/work/bench-tmp")
    a = ap.parse_args()
    efs = os.path.abspath(a.efs)
    os.makedirs(a.dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="efs-raw-bench-", dir=a.dir)
    env = dict(os.environ, EFS_HOME=os.path.join(work, "home"))
    try:
        subprocess.run([efs, "key", "new", "--name", "bench", "--no-passphrase"], env=env, check=True, stdout=subprocess.DEVNULL)
        vol = os.path.join(work, "vol"); os.mkdir(vol)
        subprocess.run([efs, "init", vol], env=env, check=True, stdout=subprocess.DEVNULL)
        rows = []
        for s in a.sizes.split(","):
            n = parse_size(s)
            f = os.path.join(vol, f"f{s}")
            with open(f, "wb") as out:
                left = n
                while left:
                    k = min(left, 1 << 24); out.write(os.urandom(k)); left -= k
            subprocess.run([efs, "encrypt", f], env=env, check=True)
            stream = os.path.join(work, f"s{s}.raw")
            def exp():
                if os.path.exists(stream): os.unlink(stream)
                return run([efs, "raw", "export", f, "-o", stream], env)[0]
            def cat():
                with open(os.path.join(work, "cat.out"), "wb") as o:
                    return run(["cat", f], env, stdout=o)[0]
            te, tc = best(a.repeat, exp), best(a.repeat, cat)
            dst = os.path.join(vol, f"imported{s}")
            def imp():
                if os.path.exists(dst): os.unlink(dst)
                return run([efs, "raw", "import", stream, dst], env)[0]
            def cp():
                return run(["cp", stream, os.path.join(work, "cp.out")], env)[0]
            ti, tp = best(a.repeat, imp), best(a.repeat, cp)
            size = os.path.getsize(f)
            rss_e = peak_rss([efs, "raw", "export", f, "-o", os.path.join(work, "rss.raw")], env)
            os.unlink(dst)
            rss_i = peak_rss([efs, "raw", "import", stream, dst], env)
            rows.append((s, size, te, tc, ti, tp, rss_e, rss_i))
            for p in (stream, os.path.join(work, "cat.out"), os.path.join(work, "cp.out"), os.path.join(work, "rss.raw")):
                if os.path.exists(p): os.unlink(p)
            os.unlink(dst); os.unlink(f)
        print(f"{'size':>6} {'export MB/s':>12} {'cat MB/s':>9} {'ratio':>6} {'import MB/s':>12} {'cp MB/s':>8} {'ratio':>6} {'RSS exp/imp MiB':>16}")
        for s, size, te, tc, ti, tp, re, ri in rows:
            mb = size / 1e6
            print(f"{s:>6} {mb/te:12.0f} {mb/tc:9.0f} {tc/te:6.2f} {mb/ti:12.0f} {mb/tp:8.0f} {tp/ti:6.2f} {re/1024:8.1f}/{ri/1024:<7.1f}")
        # Small files: backup/restore vs tar.
        if a.files and subprocess.run([efs, "backup", "--help"], env=env, capture_output=True).returncode == 0:
            tree = os.path.join(vol, "tree"); os.mkdir(tree)
            for i in range(a.files):
                d = os.path.join(tree, f"d{i // 100}")
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, f"f{i}"), "wb") as o: o.write(os.urandom(1000 + (i * 37) % 3000))
            subprocess.run([efs, "encrypt", "-r", tree], env=env, check=True)
            arch, tarf = os.path.join(work, "a.tar"), os.path.join(work, "b.tar")
            tb = best(a.repeat, lambda: run([efs, "backup", tree, "-o", arch], env)[0])
            tt = best(a.repeat, lambda: run(["tar", "-cf", tarf, "-C", vol, "tree"], env)[0])
            def rst(tool):
                d = os.path.join(work, f"r-{tool}")
                shutil.rmtree(d, ignore_errors=True); os.mkdir(d)
                if tool == "efs": return run([efs, "restore", arch, "-C", d], env)[0]
                return run(["tar", "-xf", tarf, "-C", d], env)[0]
            tr, tx = best(a.repeat, lambda: rst("efs")), best(a.repeat, lambda: rst("tar"))
            print(f"\n{a.files} small files (encrypted): backup {tb:.2f}s vs tar -c {tt:.2f}s → ratio {tt/tb:.2f}; "
                  f"restore {tr:.2f}s vs tar -x {tx:.2f}s → ratio {tx/tr:.2f}")
        else:
            print("\n(efs backup not available in this build: small-file rows skipped)")
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
