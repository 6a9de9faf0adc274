import { GROUP, VERSION, type KindDefinition } from './kinds.ts';
import { obj, str, type Schema } from './props.ts';

/** The openAPIV3Schema of a kind, as the API server stores it. */
export function objectSchema(def: KindDefinition): Schema {
  const properties: Record<string, Schema> = {
    apiVersion: str('APIVersion defines the versioned schema of this representation of an object (airlock.dev/v1alpha1).'),
    kind: str(`Kind is the REST resource this object represents (${def.kind}).`),
    // The API server allows nothing here but type (it knows ObjectMeta itself).
    metadata: { type: 'object' },
  };
  if (def.spec !== undefined) properties['spec'] = def.spec;
  properties['status'] = def.status;
  return obj(def.description, properties, def.spec !== undefined ? ['spec'] : []);
}

/** The CustomResourceDefinition manifest of a kind. */
export function customResourceDefinition(def: KindDefinition): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'airlock', 'app.kubernetes.io/part-of': 'airlock' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: [...def.shortNames],
        categories: ['airlock'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns.map((c) => ({ ...c })),
          schema: { openAPIV3Schema: objectSchema(def) },
        },
      ],
    },
  };
}
