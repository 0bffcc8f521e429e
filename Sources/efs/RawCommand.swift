// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser

struct RawCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw",
        abstract: "Export or import one encrypted file or directory in its encrypted state (no key needed).",
        discussion: "The stream is the MS-EFSR raw format of OpenEncryptedFileRaw/ReadEncryptedFileRaw/WriteEncryptedFileRaw.",
        subcommands: [RawExportCommand.self, RawImportCommand.self, RawInspectCommand.self]
    )
}
