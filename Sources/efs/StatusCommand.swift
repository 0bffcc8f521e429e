// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Tell whether files are encrypted, and if not, why not (FileEncryptionStatus)."
    )

    @Argument(help: "Files or directories.")
    var paths: [String]

    @Flag(name: .short, help: "Recurse into directories.")
    var recursive = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let session = EFSSession(passphrase: nil)
        var rows: [[String: Any]] = []
        try CLI.forEach(paths) { path in
            try Tree.visit(FilePath(path), recursive: recursive, directoriesFirst: true) { p in
                let s = try session.fileEncryptionStatus(at: p)
                if json {
                    rows.append(["path": p.string, "status": s.win32Name, "code": Int(s.rawValue), "description": s.description])
                } else {
                    print("\(p): \(s)")
                }
            }
        }
        if json { print(try CLI.json(rows)) }
    }
}
