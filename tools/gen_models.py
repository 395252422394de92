#!/usr/bin/env python3
"""Builds the AWS service models that Nimbus embeds in its binary.

Two installed sources are merged per service (see docs/service-models.md):
  * npm aws-sdk v2 (node_modules/aws-sdk/apis/<prefix>-<version>.min.json): the newer
    operations and members, but without documentation, constraints, enums or errors,
    and with small shapes inlined or renamed ("S7");
  * Debian python3-botocore (botocore/data/<service>/<version>/service-2.json): older,
    but with every constraint (min, max, pattern, enum), the error shapes and names.

The newer document is the base. Its inline shapes are lifted into named shapes, then
each operation's input and output are walked member by member in parallel with the
botocore model (by member name, same type) to copy the constraints and the botocore
shape names across. Operations botocore knows also get its error shapes. The result is
botocore's service-2 format, documentation stripped, one compact JSON document per
service; the documents are zlib-compressed into a C++ source file that
ModelRegistry::Embedded() decompresses lazily.

Usage:
  gen_models.py --botocore DIR --awssdk DIR --out-cc FILE [--out-json DIR] SERVICE...
"""

import argparse
import json
import os
import re
import sys
import zlib

# botocore service name -> aws-sdk v2 api file prefix, where they differ.
AWSSDK_PREFIX = {
    "cloudwatch": "monitoring",
    "sagemaker-runtime": "runtime.sagemaker",
    "lexv2-models": "models.lex.v2",
    "lexv2-runtime": "runtime.lex.v2",
    "lex-runtime": "runtime.lex",
}

# Metadata corrections where both sources are stale. CloudWatch is also served over
# awsJson 1.0 and Smithy RPC v2 CBOR (boto3 >= 1.36 speaks CBOR to it).
METADATA_OVERRIDES = {
    "cloudwatch": {
        "protocols": ["query", "json", "smithy-rpc-v2-cbor"],
        "jsonVersion": "1.0",
        "targetPrefix": "GraniteServiceVersion20100801",
    },
}

# Model constraints that the real service does not enforce, dropped so that requests AWS
# accepts are accepted here too. S3 takes x-amz-copy-source as "bucket/key" (botocore sends
# it so) although the model's pattern demands a leading slash.
CONSTRAINT_OVERRIDES = {
    "s3": {"CopySource": ("pattern",)},
}

METADATA_KEYS = (
    "apiVersion", "protocol", "protocols", "jsonVersion", "targetPrefix", "signingName",
    "endpointPrefix", "serviceId", "xmlNamespace", "globalEndpoint",
)

# Keys of an inline aws-sdk shape that describe the shape itself; every other key of
# an inline reference is a trait of the reference (location, locationName, ...).
SHAPE_KEYS = {
    "type", "members", "member", "key", "value", "required", "payload", "union",
    "document", "exception", "error", "fault", "min", "max", "pattern", "enum",
    "sensitive", "streaming", "event", "eventstream",
}
# Shape keys copied to the output (others, e.g. xmlOrder, are dropped).
KEEP_SHAPE_KEYS = SHAPE_KEYS | {"timestampFormat", "locationName", "xmlNamespace", "flattened"}
REF_KEYS = {
    "location", "locationName", "queryName", "flattened", "xmlNamespace", "xmlAttribute",
    "timestampFormat", "idempotencyToken", "hostLabel", "jsonvalue", "streaming",
    "eventpayload", "resultWrapper",
}
# Constraints and typing facts that botocore has and aws-sdk v2 strips.
CONSTRAINT_KEYS = ("min", "max", "pattern", "enum", "document", "union", "sensitive")
REF_FACT_KEYS = ("idempotencyToken", "timestampFormat", "jsonvalue", "hostLabel")

SCALAR_NAMES = {
    "string": "String", "integer": "Integer", "long": "Long", "float": "Float",
    "double": "Double", "bigdecimal": "BigDecimal", "boolean": "Boolean", "blob": "Blob",
    "timestamp": "Timestamp",
}


class Shape:
    """A shape of the merged model: its own keys plus references to other shapes."""

    def __init__(self, raw_id=None):
        self.raw_id = raw_id  # aws-sdk named shape id ("S7"), None when inline
        self.props = {}  # type, constraints, ... (no references)
        self.members = {}  # name -> Ref (structures)
        self.member = None  # Ref (lists)
        self.key = None  # Ref (maps)
        self.value = None  # Ref (maps)
        self.boto_name = None  # botocore shape matched by the parallel walk
        self.name = None  # final name
        self.hint = None  # name suggested by the first place it was seen

    @property
    def type(self):
        return self.props.get("type", "string")

    def refs(self):
        out = list(self.members.values())
        out += [r for r in (self.member, self.key, self.value) if r is not None]
        return out


class Ref:
    def __init__(self, target, traits):
        self.target = target
        self.traits = traits


class AwsSdkModel:
    """An aws-sdk v2 .min.json document with its inline shapes lifted into Shapes."""

    def __init__(self, doc):
        self.doc = doc
        self.named = {sid: Shape(sid) for sid in doc.get("shapes", {})}
        for sid, raw in doc.get("shapes", {}).items():
            self._fill(self.named[sid], raw)

    def ref(self, raw):
        if "shape" in raw:
            traits = {k: v for k, v in raw.items() if k in REF_KEYS}
            return Ref(self.named[raw["shape"]], traits)
        shape = Shape()
        traits = {k: v for k, v in raw.items() if k in REF_KEYS and k not in SHAPE_KEYS}
        # streaming describes a blob shape; keep it on the shape too.
        self._fill(shape, {k: v for k, v in raw.items() if k in SHAPE_KEYS})
        return Ref(shape, traits)

    def _fill(self, shape, raw):
        for k, v in raw.items():
            if k == "members":
                shape.members = {name: self.ref(m) for name, m in v.items()}
            elif k in ("member", "key", "value") and isinstance(v, dict):
                setattr(shape, k, self.ref(v))
            elif k in KEEP_SHAPE_KEYS:
                shape.props[k] = v
        shape.props.setdefault("type", "string")


def _same_type(shape, boto_shape):
    return shape.type == boto_shape.get("type", "string")


def walk(shape, boto, boto_name, seen):
    """Copies botocore's constraints and name onto shape and its members."""
    key = (id(shape), boto_name)
    if key in seen or boto_name not in boto["shapes"]:
        return
    seen.add(key)
    bs = boto["shapes"][boto_name]
    if not _same_type(shape, bs):
        return
    if shape.boto_name is None:
        shape.boto_name = boto_name
    for k in CONSTRAINT_KEYS:
        if k in bs and k not in shape.props:
            shape.props[k] = bs[k]
    if bs.get("exception"):
        for k in ("exception", "error", "fault"):
            if k in bs and k not in shape.props:
                shape.props[k] = bs[k]
    if shape.type == "structure":
        if "required" in bs and "required" not in shape.props:
            req = [m for m in bs["required"] if m in shape.members]
            if req:
                shape.props["required"] = req
        for name, ref in shape.members.items():
            bref = bs.get("members", {}).get(name)
            if bref is None:
                continue
            for k in REF_FACT_KEYS:
                if k in bref and k not in ref.traits:
                    ref.traits[k] = bref[k]
            walk(ref.target, boto, bref["shape"], seen)
    elif shape.type == "list" and shape.member and "member" in bs:
        walk(shape.member.target, boto, bs["member"]["shape"], seen)
    elif shape.type == "map" and shape.key and "key" in bs:
        walk(shape.key.target, boto, bs["key"]["shape"], seen)
        walk(shape.value.target, boto, bs["value"]["shape"], seen)


def _ident(s):
    return re.sub(r"[^A-Za-z0-9]", "", s[:1].upper() + s[1:])


class Namer:
    """Assigns unique, readable shape names: botocore's where matched, else one made
    from where the shape is used; identical scalar shapes share one name."""

    def __init__(self, reserved=()):
        self.used = set(reserved)
        self.scalars = {}  # canonical props -> name

    def unique(self, base):
        name, n = base, 2
        while name in self.used:
            name, n = "%s%d" % (base, n), n + 1
        self.used.add(name)
        return name

    def assign(self, shape, hint):
        if shape.name is not None:
            return
        if not shape.refs() and shape.type not in ("structure", "list", "map"):
            canon = (shape.boto_name, json.dumps(shape.props, sort_keys=True))
            if canon in self.scalars:
                shape.name = self.scalars[canon]
                return
            base = shape.boto_name or SCALAR_NAMES.get(shape.type, _ident(shape.type))
            shape.name = self.unique(base)
            self.scalars[canon] = shape.name
            return
        shape.name = self.unique(shape.boto_name or hint)
        for mname, ref in sorted(shape.members.items()):
            self.assign(ref.target, shape.name + _ident(mname))
        if shape.member:
            self.assign(shape.member.target, shape.name + "Member")
        if shape.key:
            self.assign(shape.key.target, shape.name + "Key")
            self.assign(shape.value.target, shape.name + "Value")


def _ref_json(ref):
    out = {"shape": ref.target.name}
    out.update(ref.traits)
    return out


def _shape_json(shape):
    out = dict(shape.props)
    if shape.type == "structure":
        out["members"] = {n: _ref_json(r) for n, r in shape.members.items()}
    if shape.member:
        out["member"] = _ref_json(shape.member)
    if shape.key:
        out["key"] = _ref_json(shape.key)
        out["value"] = _ref_json(shape.value)
    return out


def _collect(shape, out):
    if shape.name in out:
        return
    out[shape.name] = shape
    for ref in shape.refs():
        _collect(ref.target, out)


def _copy_boto_shape(boto, name, shapes_out):
    """Copies a botocore shape (an error) and what it references, docs stripped."""
    if name in shapes_out or name not in boto["shapes"]:
        return
    bs = boto["shapes"][name]
    clean = {k: v for k, v in bs.items() if k in KEEP_SHAPE_KEYS and k != "members"}
    shapes_out[name] = clean
    if "members" in bs:
        clean["members"] = {}
        for mname, mref in bs["members"].items():
            clean["members"][mname] = {k: v for k, v in mref.items() if k == "shape" or k in REF_KEYS}
            _copy_boto_shape(boto, mref["shape"], shapes_out)
    for k in ("member", "key", "value"):
        if k in bs:
            clean[k] = {kk: vv for kk, vv in bs[k].items() if kk == "shape" or kk in REF_KEYS}
            _copy_boto_shape(boto, bs[k]["shape"], shapes_out)


def _no_auth(op):
    return op.get("authtype") == "none" or "smithy.api#noAuth" in op.get("auth", [])


def merge(service, boto, awssdk):
    """Returns the merged model document (a dict) for one service."""
    base = AwsSdkModel(awssdk)
    metadata = {}
    for k in METADATA_KEYS:
        if k in awssdk.get("metadata", {}):
            metadata[k] = awssdk["metadata"][k]
        elif k in boto.get("metadata", {}):
            metadata[k] = boto["metadata"][k]
    metadata.update(METADATA_OVERRIDES.get(service, {}))
    if "protocols" not in metadata:
        metadata["protocols"] = [metadata["protocol"]]

    ops_in = awssdk.get("operations", {})
    boto_ops = boto.get("operations", {})
    io_refs = {}
    seen = set()
    for op_name in sorted(ops_in):
        raw = ops_in[op_name]
        bop = boto_ops.get(op_name, {})
        for io in ("input", "output"):
            if io not in raw:
                continue
            ref = base.ref(raw[io])
            io_refs[(op_name, io)] = ref
            if io in bop:
                for k in ("resultWrapper", "locationName", "xmlNamespace"):
                    if k in bop[io] and k not in ref.traits:
                        ref.traits[k] = bop[io][k]
                walk(ref.target, boto, bop[io]["shape"], seen)

    # Error shapes keep their botocore names; reserve them so that nothing else takes one.
    error_names = set()
    for op_name in ops_in:
        for err in boto_ops.get(op_name, {}).get("errors", []):
            error_names.add(err["shape"])
    namer = Namer(reserved=error_names)
    for (op_name, io), ref in sorted(io_refs.items()):
        namer.assign(ref.target, op_name + ("Request" if io == "input" else "Response"))

    reachable = {}
    for ref in io_refs.values():
        _collect(ref.target, reachable)
    shapes_out = {name: _shape_json(s) for name, s in sorted(reachable.items())}
    for name in sorted(error_names):
        _copy_boto_shape(boto, name, shapes_out)
    for name, keys in CONSTRAINT_OVERRIDES.get(service, {}).items():
        for k in keys:
            shapes_out.get(name, {}).pop(k, None)

    operations = {}
    for op_name in sorted(ops_in):
        raw = ops_in[op_name]
        bop = boto_ops.get(op_name, {})
        http = dict(bop.get("http", {}))
        http.update(raw.get("http", {}))
        http.setdefault("method", "POST")
        http.setdefault("requestUri", "/")
        op = {"name": op_name, "http": http}
        for io in ("input", "output"):
            if (op_name, io) in io_refs:
                op[io] = _ref_json(io_refs[(op_name, io)])
        errors = [{"shape": e["shape"]} for e in bop.get("errors", []) if e["shape"] in shapes_out]
        if errors:
            op["errors"] = errors
        if _no_auth(raw) or _no_auth(bop):
            op["authtype"] = "none"
        if raw.get("deprecated") or bop.get("deprecated"):
            op["deprecated"] = True
        operations[op_name] = op
    return {"metadata": metadata, "operations": operations, "shapes": shapes_out}


def _latest_dir(path):
    versions = sorted(v for v in os.listdir(path) if os.path.isdir(os.path.join(path, v)))
    if not versions:
        raise SystemExit("gen_models: no versions under %s" % path)
    return versions[-1]


def load_sources(service, botocore_dir, awssdk_dir):
    boto_root = os.path.join(botocore_dir, service)
    if not os.path.isdir(boto_root):
        raise SystemExit("gen_models: botocore has no service %r under %s" % (service, botocore_dir))
    version = _latest_dir(boto_root)
    with open(os.path.join(boto_root, version, "service-2.json")) as f:
        boto = json.load(f)
    prefix = AWSSDK_PREFIX.get(service, service)
    pattern = re.compile(re.escape(prefix) + r"-(\d{4}-\d{2}-\d{2})\.min\.json$")
    candidates = sorted(f for f in os.listdir(awssdk_dir) if pattern.match(f))
    if not candidates:
        raise SystemExit("gen_models: aws-sdk has no %s-*.min.json under %s" % (prefix, awssdk_dir))
    with open(os.path.join(awssdk_dir, candidates[-1])) as f:
        awssdk = json.load(f)
    return boto, awssdk


def _c_array(data):
    lines = []
    for i in range(0, len(data), 32):
        lines.append(",".join(str(b) for b in data[i:i + 32]))
    return ",\n".join(lines)


def write_cc(path, models):
    """models: list of (service, merged doc)."""
    parts = [
        "// Generated by tools/gen_models.py from the installed botocore and aws-sdk models.",
        "// Do not edit.",
        '#include "aws/model/embedded.h"',
        "",
        "namespace nimbus::aws::model::internal {",
        "namespace {",
    ]
    rows = []
    for i, (service, doc) in enumerate(models):
        raw = json.dumps(doc, separators=(",", ":")).encode()
        packed = zlib.compress(raw, 9)
        parts.append("const unsigned char kModel%d[] = {\n%s};" % (i, _c_array(packed)))
        md = doc["metadata"]
        rows.append('  {"%s", "%s", "%s", "%s", kModel%d, sizeof(kModel%d), %d},' % (
            service, md.get("signingName") or md.get("endpointPrefix", service),
            md.get("targetPrefix", ""), " ".join(md["protocols"]), i, i, len(raw)))
    parts += [
        "const EmbeddedModel kModels[] = {",
        *rows,
        "};",
        "}  // namespace",
        "",
        "std::span<const EmbeddedModel> EmbeddedModels() { return kModels; }",
        "",
        "}  // namespace nimbus::aws::model::internal",
        "",
    ]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(parts))
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--botocore", required=True, help="botocore/data directory")
    ap.add_argument("--awssdk", required=True, help="node_modules/aws-sdk/apis directory")
    ap.add_argument("--out-cc", required=True, help="C++ source to write")
    ap.add_argument("--out-json", help="also write <service>.json here (for inspection)")
    ap.add_argument("services", nargs="+")
    args = ap.parse_args(argv)
    for d in (args.botocore, args.awssdk):
        if not os.path.isdir(d):
            raise SystemExit("gen_models: %s is missing; run the set-up script" % d)
    models = []
    for service in args.services:
        boto, awssdk = load_sources(service, args.botocore, args.awssdk)
        models.append((service, merge(service, boto, awssdk)))
    if args.out_json:
        os.makedirs(args.out_json, exist_ok=True)
        for service, doc in models:
            with open(os.path.join(args.out_json, service + ".json"), "w") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
    write_cc(args.out_cc, models)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
