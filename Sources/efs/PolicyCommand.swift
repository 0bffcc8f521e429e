// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import EFSCore
import SystemPackage

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Show or change a volume's recovery policy (its recovery agents).",
        discussion: "Changes apply to files encrypted afterwards; run 'efs rekey VOLUME -r' to update existing files."
    )

    @Argument(help: "A path on the volume.")
    var path: String

    @Option(name: .customLong("add"), help: ArgumentHelp("Add a recovery agent certificate.", valueName: "CERT"))
    var add: [String] = []

    @Option(name: .customLong("remove"), help: ArgumentHelp("Remove a recovery agent by thumbprint (or unique prefix).", valueName: "THUMBPRINT"))
    var remove: [String] = []

    func run() throws {
        try CLI.run {
            guard var v = try Volume.find(containing: FilePath(path)) else {
                throw EFSError(.notOnVolume, "\(path) is not on an EFS volume")
            }
            if !add.isEmpty || !remove.isEmpty {
                var agents = v.recoveryAgents
                agents += try add.map(CLI.certificate)
                for r in remove {
                    let cleaned = r.filter { $0 != " " && $0 != ":" }.uppercased()
                    let hits = agents.filter { $0.thumbprint.hex.hasPrefix(cleaned) }
                    guard cleaned.count >= 8, hits.count == 1 else {
                        throw EFSError(.invalidArgument, "'\(r)' does not name exactly one recovery agent of the volume")
                    }
                    agents.removeAll { $0.thumbprint == hits[0].thumbprint }
                }
                try v.setRecoveryAgents(agents)
            }
            print("volume \(v.root) (id \(v.id))")
            if v.recoveryAgents.isEmpty { print("  no recovery agents") }
            for a in v.recoveryAgents { print("  recovery agent \(a.displayName)  \(a.thumbprint)") }
        }
    }
}
