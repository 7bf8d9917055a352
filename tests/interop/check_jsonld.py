"""Load a cloakline provenance document as RDF (rdflib's JSON-LD parser, offline: the context
is inline) and check that every output field has prov:wasDerivedFrom and dpv:hasLegalBasis.

usage: check_jsonld.py PROVENANCE.json EXPECTED_FIELD_COUNT
"""
import sys

import rdflib
from rdflib.namespace import RDF

PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
DPV = rdflib.Namespace("https://w3id.org/dpv#")
CL = rdflib.Namespace("urn:cloakline:v1:")

path, expected = sys.argv[1], int(sys.argv[2])
# The most common RDF call: a plain Graph, i.e. the default graph only. Every node of a
# cloakline-provenance/v2 record must land there (v1 put them in a named graph).
g = rdflib.Graph()
g.parse(path, format="json-ld")
union = rdflib.Dataset(default_union=True)
union.parse(path, format="json-ld")
fields = set(g.subjects(CL.sourceColumn, None))
problems = []
if len(fields) != expected:
    problems.append(f"expected {expected} output fields, found {len(fields)}")
for f in sorted(fields):
    derived = list(g.objects(f, PROV.wasDerivedFrom))
    bases = list(g.objects(f, DPV.hasLegalBasis))
    if not derived:
        problems.append(f"{f}: no prov:wasDerivedFrom")
    if not bases:
        problems.append(f"{f}: no dpv:hasLegalBasis")
    for d in derived:
        if (d, CL.column, None) not in g:
            problems.append(f"{f}: derived from {d}, which is not an input field")
if len(g) != len(union):
    problems.append(f"default graph has {len(g)} triples, all graphs {len(union)}: nodes left out")
runs = list(g.subjects(RDF.type, PROV.Activity))
if len(runs) != 1:
    problems.append(f"expected one prov:Activity, found {len(runs)}")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"ok: {len(g)} triples, {len(fields)} fields with derivation and legal basis")
