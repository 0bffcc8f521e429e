// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct DisableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Disable encryption in directories (EncryptionDisable), through their Desktop.ini.",
        discussion: "Encrypting files directly in such a directory is then refused. Subdirectories are not affected."
    )

    @Argument(help: "Directories.")
    var directories: [String]

    @Flag(help: "Re-enable encryption instead.")
    var enable = false

    func run() throws {
        let session = EFSSession(passphrase: nil)
        try CLI.forEach(directories) { d in try session.encryptionDisable(FilePath(d), disable: !enable) }
    }
}
