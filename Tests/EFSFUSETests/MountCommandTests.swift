// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFSTestSupport
import Foundation
import SystemPackage
import Testing

/// The command line of `efs mount` and `efs unmount`, without mounting anything.
@Suite("efs mount and unmount command line")
struct MountCommandTests {
    @Test("--help", arguments: [["mount"], ["unmount"]])
    func help(_ command: [String]) {
        let r = CLIRunner(home: FilePath("/nonexistent")).run(command + ["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE:"))
    }

    @Test("mounting a directory that is not on a volume fails with exit 22 and mounts nothing")
    func notOnVolume() throws {
        let dir = TemporaryDirectory("efs-fuse-cli")
        let cli = CLIRunner(home: dir.appending("home"))
        #expect(cli.run(["key", "new", "--name", "alice", "--no-passphrase"]).status == 0)
        try FileManager.default.createDirectory(atPath: dir.appending("plain").string, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: dir.appending("mnt").string, withIntermediateDirectories: false)
        let r = cli.run(["mount", "--foreground", dir.appending("plain").string, dir.appending("mnt").string])
        #expect(r.status == 22)
        #expect(r.stderr.contains("not on an EFS volume"))
        #expect(!FUSE.isMounted(dir.appending("mnt")))
    }

    @Test("a wrong passphrase for the current key stops the mount before it starts")
    func wrongPassphrase() throws {
        let dir = TemporaryDirectory("efs-fuse-cli")
        let cli = CLIRunner(home: dir.appending("home"))
        let pw = dir.write("pw", Array("right one\n".utf8))
        let bad = dir.write("bad", Array("wrong one\n".utf8))
        #expect(cli.run(["key", "new", "--name", "alice", "--passphrase-file", pw.string]).status == 0)
        try FileManager.default.createDirectory(atPath: dir.appending("vol").string, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: dir.appending("mnt").string, withIntermediateDirectories: false)
        #expect(cli.run(["init", dir.appending("vol").string]).status == 0)
        let r = cli.run(["mount", "--passphrase-file", bad.string, dir.appending("vol").string, dir.appending("mnt").string])
        #expect(r.status == 18)
        #expect(!FUSE.isMounted(dir.appending("mnt")))
    }
}
