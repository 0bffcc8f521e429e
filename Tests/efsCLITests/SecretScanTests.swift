// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSSystem
import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// Scans everything swift-efs writes or shows for what must never be there: plaintext in backing files, raw
/// streams and backup archives (data and `user.*` attribute values), and the passphrase in argv, the environment,
/// logs, messages or the key store.
@Suite("Security: secret scans")
struct SecretScanTests {
    static let marker = Array("PLAINTEXT-MARKER-7f3a".utf8)

    /// A distinctive plaintext: the marker followed by a counter, over and over.
    static func plaintext(_ size: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(size + 64)
        var i = 0
        while out.count < size {
            out += marker + Array(String(format: "%08d|", i).utf8)
            i += 1
        }
        return Array(out.prefix(size))
    }

    func expectNoSecret(_ bytes: [UInt8], _ secret: [UInt8], _ label: String) {
        #expect(!TestFiles.contains(bytes, secret), "\(label) contains the secret")
    }

    @Test("no plaintext or attribute value in backing files, raw streams or backup archives")
    func noPlaintextAtRest() throws {
        let w = try World()
        let a = w.alice
        let path = w.path("doc.txt")
        let attr = Array("ATTRIBUTE-SECRET-91bd".utf8)
        TestFiles.write(FilePath(path), Self.plaintext(300_001))
        let fd = try Sys.open(FilePath(path), .readWrite)
        try Sys.setXattr(fd, "user.note", attr)
        Sys.close(fd)
        #expect(a.run(["encrypt", path]).status == 0)
        try FileManager.default.createDirectory(atPath: w.path("dir"), withIntermediateDirectories: false)
        #expect(a.run(["encrypt", w.path("dir")]).status == 0)

        // The backing file and its attributes.
        expectNoSecret(TestFiles.read(FilePath(path)), Self.marker, "the backing file")
        let bfd = try Sys.open(FilePath(path), .readOnly)
        for name in try Sys.listXattrs(bfd) {
            expectNoSecret(try Sys.getXattr(bfd, name), attr, "backing attribute \(name)")
        }
        Sys.close(bfd)
        // The raw stream (data and named streams) and a backup archive.
        let raw = w.dir.appending("doc.raw")
        #expect(a.run(["raw", "export", path, "-o", raw.string]).status == 0)
        expectNoSecret(TestFiles.read(raw), Self.marker, "the raw stream")
        expectNoSecret(TestFiles.read(raw), attr, "the raw stream")
        let archive = w.dir.appending("b.tar")
        #expect(a.run(["backup", "vault", "-C", w.dir.path.string, "-o", archive.string]).status == 0)
        expectNoSecret(TestFiles.read(archive), Self.marker, "the backup archive")
        expectNoSecret(TestFiles.read(archive), attr, "the backup archive")
        // A file imported from the stream stays sealed too.
        #expect(a.run(["raw", "import", raw.string, w.path("copy.txt")]).status == 0)
        expectNoSecret(TestFiles.read(FilePath(w.path("copy.txt"))), Self.marker, "the imported backing file")
        // And the plaintext is really there for the key holder (the scan would pass vacuously otherwise).
        #expect(TestFiles.contains(a.run(["cat", path]).stdoutBytes, Self.marker))
    }

    @Test("the passphrase appears in no argv, environment, message, log or key-store file")
    func passphraseNowhere() throws {
        let w = try World(passphrase: true)
        let secret = "correct horse battery"
        let pwFile = w.dir.appending("pw")  // World wrote the passphrase there
        let env = ["EFS_PASSPHRASE_FILE": pwFile.string]
        let path = w.path("p.txt")
        TestFiles.write(FilePath(path), Self.plaintext(10_000))
        var outputs: [CLIRunner.Result] = []
        outputs.append(w.alice.run(["encrypt", path], env: env))
        outputs.append(w.alice.run(["cat", path], env: env))
        outputs.append(w.alice.run(["key", "list"], env: env))
        // A wrong passphrase: the message must not echo what was typed.
        let wrong = w.dir.write("wrong", Array("a wrong guess 123\n".utf8))
        let bad = w.alice.run(["cat", path], env: ["EFS_PASSPHRASE_FILE": wrong.string])
        #expect(bad.status != 0)
        #expect(!bad.stderr.contains("a wrong guess"), "the error repeats the wrong passphrase")
        outputs.append(bad)
        #expect(outputs[0].status == 0 && outputs[1].status == 0)
        for r in outputs {
            #expect(!r.stderr.contains(secret), "stderr: \(r.stderr)")
            #expect(!TestFiles.contains(r.stdoutBytes, Array(secret.utf8)), "stdout")
        }
        // The key store holds the private key encrypted, and never the passphrase.
        let store = w.dir.appending("alice-home")
        let files = FileManager.default.enumerator(atPath: store.string)?.compactMap { $0 as? String } ?? []
        #expect(!files.isEmpty)
        for f in files {
            let bytes = TestFiles.read(store.appending(f))
            expectNoSecret(bytes, Array(secret.utf8), "key-store file \(f)")
            if f.hasSuffix(".pem"), TestFiles.contains(bytes, Array("PRIVATE KEY".utf8)) {
                #expect(TestFiles.contains(bytes, Array("ENCRYPTED PRIVATE KEY".utf8)), "\(f) is not encrypted")
            }
        }
        // A long-running process (a foreground mount) shows neither the passphrase nor key bytes in
        // /proc/PID/cmdline or /proc/PID/environ.
        guard FileManager.default.fileExists(atPath: "/dev/fuse") else { return }
        let mnt = w.dir.appending("mnt")
        try FileManager.default.createDirectory(atPath: mnt.string, withIntermediateDirectories: false)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: w.alice.binary)
        p.arguments = ["mount", "--foreground", w.vault.string, mnt.string]
        var penv = w.alice.environment
        penv["EFS_PASSPHRASE_FILE"] = pwFile.string
        p.environment = penv
        let log = w.dir.appending("mount.log")
        FileManager.default.createFile(atPath: log.string, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: log.string)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer {
            _ = w.alice.run(["unmount", mnt.string])
            p.terminate()
            p.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning, Date() < deadline,
              !((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").contains(mnt.string) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(p.isRunning, "the mount came up")
        // Read a file through the mount so the key is surely unlocked and in use.
        #expect(TestFiles.contains(TestFiles.read(mnt.appending("p.txt")), Self.marker))
        for what in ["cmdline", "environ"] {
            let bytes = TestFiles.read(FilePath("/proc/\(p.processIdentifier)/\(what)"))
            #expect(!bytes.isEmpty, "/proc/PID/\(what) was read")
            expectNoSecret(bytes, Array(secret.utf8), "/proc/PID/\(what)")
        }
        expectNoSecret(TestFiles.read(log), Array(secret.utf8), "the mount log")
    }
}
