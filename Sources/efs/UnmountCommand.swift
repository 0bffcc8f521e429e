// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import Foundation

struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount",
        abstract: "Unmount a volume mounted with 'efs mount' (fusermount3 -u)."
    )

    @Argument(help: "The mount point.")
    var mountpoint: String

    @Flag(name: .customShort("z"), help: "Detach now even if files are open (lazy unmount).")
    var lazy = false

    func run() throws {
        try CLI.run {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["fusermount3", "-u"] + (lazy ? ["-z"] : []) + ["--", mountpoint]
            do { try p.run() } catch {
                throw EFSError(.notSupported, "cannot run fusermount3 (install fuse3): \(error)")
            }
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw EFSError(.ioError, "cannot unmount \(mountpoint) (fusermount3 said why above)")
            }
        }
    }
}
