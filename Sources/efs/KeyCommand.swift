// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Manage your EFS keys and certificates.",
        subcommands: [KeyNewCommand.self, KeyListCommand.self, KeyUseCommand.self, KeyExportCommand.self, KeyImportCommand.self]
    )
}
