// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

import EFS
import EFSSystem
import SystemPackage

/// Directory helpers for the recursive commands.
enum Files {
    static func isDirectory(_ path: FilePath) -> Bool { (try? Sys.lstat(path))?.kind == .directory }

    static func isSymlink(_ path: FilePath) -> Bool { (try? Sys.lstat(path))?.kind == .symlink }

    static func list(_ path: FilePath) throws -> [String] {
        do { return try Sys.listDirectory(path).map(\.name) } catch {
            throw EFSError(error == .permissionDenied ? .accessDenied : .ioError, "\(path): cannot list: \(error)")
        }
    }

    /// swift-efs's own names: the volume config, directory markers, temporary files.
    static func isInternal(_ name: String) -> Bool {
        name == Volume.configDirectoryName || name == DirectoryMarker.name || TemporaryName.isTemporary(name)
    }
}
