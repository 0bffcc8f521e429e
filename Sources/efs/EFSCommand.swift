// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser

@main
struct EFSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "efs",
        abstract: "The Windows Encrypting File System (EFS), on Linux.",
        discussion: """
            Files are encrypted at rest with their own key, wrapped for each user's certificate and each recovery \
            agent's. The key store is $EFS_HOME (default $XDG_DATA_HOME/efs or ~/.local/share/efs). Passphrases come \
            from a terminal prompt, --passphrase-file FILE or $EFS_PASSPHRASE_FILE. Exit statuses are listed in \
            Documentation/cli.md.
            """,
        version: "0.1.0",
        subcommands: [
            KeyCommand.self, InitCommand.self, PolicyCommand.self, EncryptCommand.self, DecryptCommand.self,
            StatusCommand.self, CatCommand.self, UsersCommand.self, RekeyCommand.self, DisableCommand.self, RawCommand.self,
            WindowsCommand.self,
            FsckCommand.self, MountCommand.self, UnmountCommand.self,
            BackupCommand.self, RestoreCommand.self, VerifyCommand.self,
        ]
    )
}
