// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import ArgumentParser
import EFS
import SystemPackage

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make a directory an EFS volume, with a recovery policy."
    )

    @Argument(help: "The directory.")
    var directory: String

    @Option(name: .customLong("recovery-agent"), help: ArgumentHelp("A recovery agent's certificate (PEM or DER file, or a thumbprint in your key store); repeat for more.", valueName: "CERT"))
    var recoveryAgents: [String] = []

    func run() throws {
        try CLI.run {
            let certs = try recoveryAgents.map(CLI.certificate)
            let v = try Volume.initialize(at: FilePath(directory), recoveryAgents: certs)
            print("initialised EFS volume \(v.root) (id \(v.id)) with \(v.recoveryAgents.count) recovery agent\(v.recoveryAgents.count == 1 ? "" : "s")")
        }
    }
}
