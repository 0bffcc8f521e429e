// SPDX-License-Identifier: Apache-2.0
// This file is part of swift-efs. See LICENSE for details.

// The EFS API uses EFSCore's vocabulary types (certificates, thumbprints, keys, passphrases) in its signatures,
// so a client that imports EFS gets them too.
@_exported import EFSCore
