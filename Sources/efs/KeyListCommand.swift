// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore
import Foundation

struct KeyListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the certificates in your key store.")

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try CLI.run {
            let entries = try KeyStore(root: KeyStore.defaultLocation()).list()
            if json {
                let rows: [[String: Any]] = entries.map { e in
                    [
                        "thumbprint": e.thumbprint.hex, "name": e.certificate.displayName, "current": e.isCurrent,
                        "role": e.certificate.isRecoveryAgent ? "recovery-agent" : "user",
                        "privateKey": e.hasPrivateKey ? (e.privateKeyIsEncrypted ? "encrypted" : "unencrypted") : "none",
                        "algorithm": e.certificate.algorithm.description,
                        "notValidAfter": ISO8601DateFormatter().string(from: e.certificate.notValidAfter),
                    ]
                }
                print(try CLI.json(rows))
                return
            }
            if entries.isEmpty {
                print("no keys: run 'efs key new'")
                return
            }
            for e in entries {
                let mark = e.isCurrent ? "*" : " "
                let role = e.certificate.isRecoveryAgent ? "recovery agent" : "user"
                let key = e.hasPrivateKey ? (e.privateKeyIsEncrypted ? "key (passphrase)" : "key (no passphrase)") : "certificate only"
                print("\(mark) \(e.thumbprint)  \(e.certificate.displayName)  [\(role), \(e.certificate.algorithm), \(key)]")
            }
        }
    }
}
