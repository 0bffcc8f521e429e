// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore
import EFSWindows
import Foundation

struct WindowsInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe Windows EFS data: its users, recovery agents and streams. No key is needed.",
        discussion: """
            FILE may also be a bare $EFS. The data algorithm is inside the encrypted file key, so it is shown only \
            when --key is given.
            """
    )

    @OptionGroup var source: WindowsInputOptions

    @Option(help: ArgumentHelp("A key (PKCS#12 or PEM PKCS#8) to show the algorithm with.", valueName: "KEY"))
    var key: String?

    @Option(help: ArgumentHelp("The key's certificate (PEM or DER).", valueName: "CERT"))
    var cert: String?

    @OptionGroup var passphrase: PassphraseOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try CLI.run {
            let input = try source.input()
            let info = try input.inspect()
            var algorithm: WindowsAlgorithm?
            var opened: (isRecovery: Bool, index: Int)?
            if let key {
                let k = try WindowsKeyOptions.load(key: key, cert: cert, passphrase: passphrase)
                let (fek, match) = try k.unwrap(info.metadata, path: input.path)
                algorithm = fek.algorithm
                opened = (match.isRecovery, match.index)
            }
            if json {
                print(try CLI.json(Self.json(info, algorithm: algorithm, opened: opened)))
            } else {
                print(Self.text(info, algorithm: algorithm, opened: opened), terminator: "")
            }
        }
    }

    static func text(_ info: WindowsInspection, algorithm: WindowsAlgorithm?, opened: (isRecovery: Bool, index: Int)?) -> String {
        let m = info.metadata
        var out = "\(info.input.path): \(info.input.formName)\n"
        out += "metadata: \(info.formatDescription), \(info.metadataSize) bytes, EFS_ID \(Hex.encode(m.efsID))\n"
        if let algorithm {
            out += "algorithm: \(algorithm)\(algorithm.isWeak ? "  WEAK (3DES/DESX)" : "")\n"
        } else {
            out += "algorithm: unknown without a key (it is inside the encrypted FEK; give --key)\n"
        }
        func list(_ title: String, _ entries: [WindowsKeyEntry], recovery: Bool) {
            out += "\(title):\n"
            if entries.isEmpty { out += "  none\n" }
            for (i, e) in entries.enumerated() {
                let mark = opened.map { $0.isRecovery == recovery && $0.index == i } == true ? "  (opened with the key)" : ""
                out += "  [\(i)] \(e.displayName)\(mark)\n"
                out += "      thumbprint: \(e.thumbprintDescription)\n"
                if let sid = e.publicKeyInfo.sid { out += "      SID: \(sid)\n" }
                let c = e.publicKeyInfo.certificate
                if let n = c.containerName { out += "      container: \(n)\n" }
                if let n = c.providerName { out += "      provider: \(n)\n" }
                if e.flags != WindowsKeyEntry.flagRSA { out += "      flags: \(e.flags) (AES-wrapped FEK; not supported yet)\n" }
            }
        }
        list("users (DDF)", m.ddf, recovery: false)
        list("recovery agents (DRF)", m.drf ?? [], recovery: true)
        if case .metadata = info.input { return out }
        out += "streams:\n"
        if info.streams.isEmpty { out += "  none\n" }
        for s in info.streams {
            out += "  \(s.name)  \(s.size) bytes  \(s.segments) segment\(s.segments == 1 ? "" : "s")"
            out += (s.sparse ? "  sparse" : "") + (s.flag != 0 ? "  not encrypted (Flag \(s.flag))" : "") + "\n"
        }
        return out
    }

    static func json(_ info: WindowsInspection, algorithm: WindowsAlgorithm?, opened: (isRecovery: Bool, index: Int)?) -> [String: Any] {
        let m = info.metadata
        func entry(_ e: WindowsKeyEntry, _ i: Int, recovery: Bool) -> [String: Any] {
            let c = e.publicKeyInfo.certificate
            return [
                "index": i, "displayName": c.displayName as Any? ?? NSNull(),
                "thumbprint": Hex.encode(c.thumbprint, uppercase: true),
                "sid": e.publicKeyInfo.sid?.description as Any? ?? NSNull(),
                "containerName": c.containerName as Any? ?? NSNull(), "providerName": c.providerName as Any? ?? NSNull(),
                "flags": e.flags,
                "opened": opened.map { $0.isRecovery == recovery && $0.index == i } ?? false,
            ]
        }
        var form: String
        switch info.input {
        case .robs: form = "robs"
        case .ntfs3g: form = "ntfs3g"
        case .metadata: form = "efs"
        }
        var o: [String: Any] = [
            "file": info.input.path.string, "form": form, "metadataVersion": 1, "efsVersion": m.efsVersion,
            "metadataSize": info.metadataSize, "efsID": Hex.encode(m.efsID),
            "ddf": m.ddf.enumerated().map { entry($1, $0, recovery: false) },
            "drf": (m.drf ?? []).enumerated().map { entry($1, $0, recovery: true) },
            "algorithm": algorithm.map { ["name": $0.description, "algId": $0.rawValue, "weak": $0.isWeak] as [String: Any] } as Any? ?? NSNull(),
        ]
        if case .metadata = info.input {} else {
            o["streams"] = info.streams.map {
                ["name": $0.name, "size": $0.size, "segments": $0.segments, "sparse": $0.sparse, "encrypted": $0.flag == 0] as [String: Any]
            }
        }
        return o
    }
}
