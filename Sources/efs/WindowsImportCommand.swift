// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct WindowsImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Make a native encrypted file from Windows EFS data, for the same users.",
        discussion: """
            Each user (DDF) and recovery agent (DRF) of FILE keeps access when its certificate is in your key store \
            or in the key file; the others are skipped with a warning. The volume's recovery agents are added. \
            PATH must not exist; it is created atomically and plaintext never reaches the disk.
            """
    )

    @OptionGroup var source: WindowsInputOptions

    @Argument(help: "The encrypted file to create, on an EFS volume.")
    var path: String

    @OptionGroup var key: WindowsKeyOptions

    func run() throws {
        try CLI.run {
            let input = try source.input()
            let k = try key.load()
            let session = key.passphrase.session()
            let r = try session.importWindows(input, key: k, to: FilePath(path))
            r.decryption.warn()
            for s in r.skipped {
                CLI.warn("skipped \(s.isRecovery ? "recovery agent" : "user") \(s.name) (\(s.thumbprint)): \(s.reason)")
            }
            print("imported \(source.file) as \(path) (Windows data: \(r.decryption.algorithm))")
            for u in r.users { print("user: \(u.displayName)  \(u.thumbprint)") }
            for a in r.recoveryAgents { print("recovery agent: \(a.displayName)  \(a.thumbprint)") }
        }
    }
}
