/** An API failure with an HTTP status, a stable code and a message that says what to do next. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** The JSON body of every API error. */
export interface ApiErrorBody {
  error: { code: string; message: string };
}
