// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore
import SystemPackage

struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "List, add or remove the users (DDF) of encrypted files; list their recovery agents (DRF).",
        subcommands: [UsersListCommand.self, UsersAddCommand.self, UsersRemoveCommand.self],
        defaultSubcommand: UsersListCommand.self
    )
}

struct UsersListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List users and recovery agents (no key needed).")

    @Argument(help: "Encrypted files or directories.")
    var paths: [String]

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let session = EFSSession(passphrase: nil)
        var rows: [[String: Any]] = []
        try CLI.forEach(paths) { path in
            let users = try session.queryUsers(at: FilePath(path))
            let agents = try session.queryRecoveryAgents(at: FilePath(path))
            func obj(_ h: CertificateHash) -> [String: Any] {
                ["name": h.displayName, "thumbprint": h.thumbprint.hex, "algorithm": h.algorithm.description]
            }
            if json {
                rows.append(["path": path, "users": users.map(obj), "recoveryAgents": agents.map(obj)])
                return
            }
            print(path)
            print("  Users (DDF):")
            for u in users { print("    \(u.displayName)  \(u.thumbprint)  [\(u.algorithm)]") }
            print("  Recovery agents (DRF):")
            if agents.isEmpty { print("    none") }
            for a in agents { print("    \(a.displayName)  \(a.thumbprint)  [\(a.algorithm)]") }
        }
        if json { print(try CLI.json(rows)) }
    }
}

struct UsersAddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Give more users access to an encrypted file (AddUsersToEncryptedFile). Needs your key on the file."
    )

    @Argument(help: "The encrypted file or directory.")
    var path: String

    @Argument(help: "Certificates to add: PEM or DER files, or thumbprints of certificates in your key store.")
    var certificates: [String]

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        try CLI.run {
            let certs = try certificates.map(CLI.certificate)
            try passphrase.session().addUsers(at: FilePath(path), certificates: certs)
        }
    }
}

struct UsersRemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove users from an encrypted file (RemoveUsersFromEncryptedFile). Unknown thumbprints are ignored."
    )

    @Argument(help: "The encrypted file or directory.")
    var path: String

    @Argument(help: "Thumbprints of the users to remove (full, or a unique prefix of 8+ hex digits among the file's users).")
    var thumbprints: [String]

    @OptionGroup var passphrase: PassphraseOptions

    func run() throws {
        try CLI.run {
            let session = passphrase.session()
            let users = try session.queryUsers(at: FilePath(path)).map(\.thumbprint)
            var remove: [Thumbprint] = []
            for t in thumbprints {
                let cleaned = t.filter { $0 != " " && $0 != ":" }.uppercased()
                guard Hex.decode(cleaned.count % 2 == 0 ? cleaned : cleaned + "0") != nil, !cleaned.isEmpty else {
                    throw EFSError(.invalidArgument, "'\(t)' is not a thumbprint")
                }
                if let full = Thumbprint(cleaned) {
                    remove.append(full)
                    continue
                }
                guard cleaned.count >= 8 else { throw EFSError(.invalidArgument, "thumbprint prefix '\(t)' is too short: give at least 8 hex digits") }
                let hits = users.filter { $0.hex.hasPrefix(cleaned) }
                guard hits.count <= 1 else { throw EFSError(.invalidArgument, "thumbprint prefix '\(t)' matches several users") }
                remove += hits
            }
            try session.removeUsers(at: FilePath(path), thumbprints: remove)
        }
    }
}
