/** Who is calling: always derived from the transport (bearer token, or fixed at launch for stdio), never from arguments. */
export interface Principal {
  project: string;
  role: 'ps' | 'ms';
}

